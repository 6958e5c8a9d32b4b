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

// FastOpen is how many connections the fast server has open (servers.go).
func (a *API) FastOpen() int64 {
	if s := a.srvs.Load(); s != nil {
		return s.fastOpen.Load()
	}
	return 0
}
