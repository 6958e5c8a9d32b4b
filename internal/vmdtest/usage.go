package vmdtest

// Usage is what a process holds: resident memory, open descriptors and
// threads. ReadUsage reads it from /proc on Linux.
type Usage struct {
	RSSKiB  int `json:"rssKiB"`
	FDs     int `json:"fds"`
	Threads int `json:"threads"`
}
