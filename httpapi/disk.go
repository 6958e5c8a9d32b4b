package httpapi

// diskStatus is /status's "disk": the guard's minimum and each watched
// filesystem as measured now.
type diskStatus struct {
	MinFreeBytes uint64         `json:"minFreeBytes"`
	Filesystems  []diskFSStatus `json:"filesystems"`
}

type diskFSStatus struct {
	// Name is the roles of the directories on the filesystem:
	// "workspace", "images", "temp", or several joined by "+".
	Name      string `json:"name"`
	Path      string `json:"path"`
	FreeBytes uint64 `json:"freeBytes"`
	SizeBytes uint64 `json:"sizeBytes"`
	Error     string `json:"error,omitempty"`
}

// diskState measures the filesystems for /status; nil without a guard.
func (a *API) diskState() *diskStatus {
	if a.disk == nil {
		return nil
	}
	d := &diskStatus{MinFreeBytes: a.disk.MinFree(), Filesystems: []diskFSStatus{}}
	for _, f := range a.disk.Free() {
		fs := diskFSStatus{Name: f.Name(), Path: f.Path, FreeBytes: f.Free, SizeBytes: f.Size}
		if f.Err != nil {
			fs.Error = f.Err.Error()
		}
		d.Filesystems = append(d.Filesystems, fs)
	}
	return d
}

// checkDisk is /ready's disk check, in the words a refused command gets.
func (a *API) checkDisk() check {
	if a.disk == nil {
		return check{OK: true, Message: "not watched"}
	}
	if err := a.disk.Check(); err != nil {
		return check{Message: err.Error()}
	}
	return check{OK: true}
}
