package commands

import "github.com/vmd-dev/vmd/agent"

func outcomeFor(i int) agent.Outcome { return agent.Outcome(i) }
