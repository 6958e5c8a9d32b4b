package httpapi

// SessionIDPattern is the CLI's session id, for the tests.
var SessionIDPattern = sessionIDPattern

// OpenAPI is the document served at /openapi.json.
var OpenAPI = openAPI
