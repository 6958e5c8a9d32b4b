package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmd-dev/vmd/workspace"
)

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

// diskCollector exposes the free space of the guard's filesystems, measured
// at each scrape, so that the workspace package knows nothing of
// Prometheus.
type diskCollector struct{ disk *workspace.Guard }

var (
	diskFreeDesc = prometheus.NewDesc("vmd_disk_free_bytes",
		"Free space left to vmd's user on each filesystem the disk guard watches, by filesystem (workspace, images, temp, or several joined by +) and path.",
		[]string{"filesystem", "path"}, nil)
	diskSizeDesc = prometheus.NewDesc("vmd_disk_size_bytes",
		"Size of each filesystem the disk guard watches.", []string{"filesystem", "path"}, nil)
	diskMinFreeDesc = prometheus.NewDesc("vmd_disk_min_free_bytes",
		"min_free_disk: below this free space on any watched filesystem, new commands get 507 (0: the guard is off).", nil, nil)
)

func (c diskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- diskFreeDesc
	ch <- diskSizeDesc
	ch <- diskMinFreeDesc
}

func (c diskCollector) Collect(ch chan<- prometheus.Metric) {
	if c.disk == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(diskMinFreeDesc, prometheus.GaugeValue, float64(c.disk.MinFree()))
	for _, f := range c.disk.Free() {
		if f.Err != nil {
			continue // /status and /ready say why
		}
		ch <- prometheus.MustNewConstMetric(diskFreeDesc, prometheus.GaugeValue, float64(f.Free), f.Name(), f.Path)
		ch <- prometheus.MustNewConstMetric(diskSizeDesc, prometheus.GaugeValue, float64(f.Size), f.Name(), f.Path)
	}
}
