package httpapi

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/vmd-dev/vmd/images"
	"github.com/vmd-dev/vmd/store"
	"github.com/vmd-dev/vmd/supervisor"
	"github.com/vmd-dev/vmd/webhook"
	"github.com/vmd-dev/vmd/workspace"
)

// sizeTimeout bounds reading the store's size at a scrape.
const sizeTimeout = time.Second

// scraped are the families read from the other packages at each scrape, so
// that none of them knows about Prometheus. Any part may be nil.
type scraped struct {
	sup   *supervisor.Supervisor
	img   *images.Store
	st    *store.Store
	hooks *webhook.Sender
	disk  *workspace.Guard
}

// sample is one series of a family: its labels (name, value pairs) and value.
type sample struct {
	labels []string
	value  float64
}

// family writes a family: its (bare) HELP and TYPE lines, then its samples.
func family(w io.Writer, name, typ string, samples ...sample) {
	fmt.Fprintf(w, "# HELP %s\n# TYPE %s %s\n", name, name, typ)
	for _, s := range samples {
		fmt.Fprintf(w, "%s %s\n", series(name, s.labels...), strconv.FormatFloat(s.value, 'g', -1, 64))
	}
}

// single is the one series of a family without labels.
func single(v float64) sample { return sample{value: v} }

func (c scraped) write(w io.Writer) {
	var sup supervisor.Stats
	if c.sup != nil {
		sup = c.sup.Stats()
	}
	var img images.Stats
	if c.img != nil {
		img = c.img.Stats()
	}
	busy := 0.0
	if sup.Busy {
		busy = 1
	}
	family(w, "vmd_zombies_reaped_total", "counter", single(float64(sup.ZombiesReaped)))
	family(w, "vmd_stray_processes_killed_total", "counter", single(float64(sup.StraysKilled)))
	family(w, "vmd_command_busy", "gauge", single(busy))
	family(w, "vmd_images_written_total", "counter", single(float64(img.Written)))
	family(w, "vmd_images_cleaned_total", "counter", single(float64(img.Cleaned)))
	c.writeStore(w)
	c.writeDisk(w)
}

func (c scraped) writeStore(w io.Writer) {
	if c.st != nil {
		family(w, "vmd_store_write_errors_total", "counter", single(float64(c.st.Stats().WriteErrors)))
		ctx, cancel := context.WithTimeout(context.Background(), sizeTimeout)
		if size, err := c.st.Size(ctx); err == nil {
			family(w, "vmd_store_size_bytes", "gauge", single(float64(size)))
		}
		cancel()
	}
	var h webhook.Stats
	if c.hooks != nil {
		h = c.hooks.Stats()
	}
	family(w, "vmd_webhook_deliveries_total", "counter",
		sample{[]string{"outcome", "delivered"}, float64(h.Delivered)}, sample{[]string{"outcome", "retried"}, float64(h.Retried)},
		sample{[]string{"outcome", "gone"}, float64(h.Gone)}, sample{[]string{"outcome", "expired"}, float64(h.Expired)})
}

// writeDisk writes the free space of the guard's filesystems, measured now;
// one that cannot be measured is left out (/status and /ready say why).
func (c scraped) writeDisk(w io.Writer) {
	if c.disk == nil {
		return
	}
	family(w, "vmd_disk_min_free_bytes", "gauge", single(float64(c.disk.MinFree())))
	var free, size []sample
	for _, f := range c.disk.Free() {
		if f.Err == nil {
			labels := []string{"filesystem", f.Name(), "path", f.Path}
			free, size = append(free, sample{labels, float64(f.Free)}), append(size, sample{labels, float64(f.Size)})
		}
	}
	family(w, "vmd_disk_free_bytes", "gauge", free...)
	family(w, "vmd_disk_size_bytes", "gauge", size...)
}
