package store

// Ended states as the commands service names them (package outcome): the
// store keeps whatever name it is given.
const (
	Succeeded   State = "succeeded"
	Failed      State = "failed"
	Interrupted State = "interrupted"
	Timeout     State = "timeout"
)
