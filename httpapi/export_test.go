package httpapi

import "github.com/prometheus/client_golang/prometheus"

// SessionIDPattern is the CLI's session id, for the tests.
var SessionIDPattern = sessionIDPattern

// Registry is the API's metrics registry.
func (a *API) Registry() *prometheus.Registry { return a.metrics.reg }

// ObserveUsage adds what a command cost, as observeReport does.
func (a *API) ObserveUsage(costUSD float64, inputTokens, outputTokens, cacheCreationTokens, cacheReadTokens int) {
	a.metrics.observeUsage(costUSD, inputTokens, outputTokens, cacheCreationTokens, cacheReadTokens)
}

// OpenAPI is the document served at /openapi.json.
var OpenAPI = openAPI

// Outcomes are the label values of vmd_commands_total.
var Outcomes = outcomes
