package httpapi

// SessionIDPattern is the CLI's session id, for the tests.
var SessionIDPattern = sessionIDPattern

// ObserveUsage adds what a command cost, as observeReport does.
func (a *API) ObserveUsage(costUSD float64, inputTokens, outputTokens, cacheCreationTokens, cacheReadTokens int) {
	a.metrics.observeUsage(costUSD, inputTokens, outputTokens, cacheCreationTokens, cacheReadTokens)
}

// OpenAPI is the document served at /openapi.json.
var OpenAPI = openAPI

// Outcomes are the label values of vmd_commands_total.
var Outcomes = outcomes
