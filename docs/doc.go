// Package docs holds vmd's reference documentation, in Markdown beside this
// file. It has no code: its test keeps api.md in step with the API's
// OpenAPI document, httpapi/openapi.json.
package docs
