package agent

import (
	"sync"

	"github.com/vmd-dev/vmd/images"
)

// capture tells a turn's events to its caller, in order with the images
// the turn makes, and records those images. Images are written by tools: a
// tool's result means the tool is done and its files whole, so that is
// where they are told, once the images watcher has caught up with what it
// wrote. Not at any line: lines written before an image may be read after
// the watcher saw it.
//
// With a watcher (a caller to tell) and an images store, events go through
// the announcer goroutine, so that the stdout reader queues them and never
// waits for the images watcher.
type capture struct {
	emit  func(Event) // nil: nobody is watching
	rec   *images.Recording
	begun chan struct{} // closed once rec is set (the recording has begun)

	mu      sync.Mutex
	queued  []queued
	pending []string // images seen, not yet told

	emitMu sync.Mutex // one emit at a time
	sent   map[string]bool

	wake      chan struct{} // a queued item is waiting; nil without an announcer
	stop      chan struct{} // closed when the turn is over
	announced chan struct{} // closed once the announcer has stopped
}

// queued is an event to tell, or (toolDone) the sign that a tool's result
// was read: its images are told first.
type queued struct {
	ev       Event
	toolDone bool
}

// newCapture begins recording the images a turn makes (in the background:
// wait for begun before the CLI may make one) and starts the announcer
// when there is both a caller to tell and an images store.
func newCapture(img *images.Store, emit func(Event)) *capture {
	c := &capture{emit: emit, begun: make(chan struct{}), sent: map[string]bool{}}
	if img == nil {
		close(c.begun)
		return c
	}
	go func() {
		c.rec = img.Begin(c.image)
		close(c.begun)
	}()
	if emit != nil {
		c.wake, c.stop, c.announced = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
		go c.announce()
	}
	return c
}

// send tells an event, through the announcer when there is one.
func (c *capture) send(ev Event) {
	switch {
	case c.emit == nil:
	case c.wake != nil:
		c.push(queued{ev: ev})
	default:
		c.tell(ev)
	}
}

// toolDone says a tool's result was read: the images it wrote are told.
func (c *capture) toolDone() {
	if c.wake != nil {
		c.push(queued{toolDone: true})
		return
	}
	c.tellImages()
}

func (c *capture) push(q queued) {
	c.mu.Lock()
	if n := len(c.queued); !q.toolDone || n == 0 || !c.queued[n-1].toolDone { // one sign stands for several
		c.queued = append(c.queued, q)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// announce tells the queued events in order and, at each tool result, the
// images the tool wrote, as soon as the images watcher has caught up with
// them. After the watcher once fails to catch up in time it is not asked
// again: a stalled watcher must not cost a moment per tool result.
func (c *capture) announce() {
	defer close(c.announced)
	catchUp := true
	tell := func() {
		c.mu.Lock()
		items := c.queued
		c.queued = nil
		c.mu.Unlock()
		for _, q := range items {
			if !q.toolDone {
				c.tell(q.ev)
				continue
			}
			<-c.begun // at once: a tool ran, so the prompt was let go
			if catchUp && !c.rec.CatchUp() {
				catchUp = false
			}
			c.tellImages()
		}
	}
	for {
		tell()
		select {
		case <-c.stop:
			tell() // what came with the last wake
			return
		case <-c.wake:
		}
	}
}

// image is called by the images watcher for each new image of the turn.
func (c *capture) image(name string) {
	c.mu.Lock()
	c.pending = append(c.pending, name)
	c.mu.Unlock()
}

func (c *capture) tellImages() {
	c.mu.Lock()
	names := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, n := range names {
		c.tellImage(n)
	}
}

func (c *capture) tellImage(name string) {
	c.emitMu.Lock()
	defer c.emitMu.Unlock()
	if c.sent[name] || c.emit == nil {
		return
	}
	c.sent[name] = true
	c.emit(Event{Kind: EventImage, Image: name})
}

func (c *capture) tell(ev Event) {
	c.emitMu.Lock()
	defer c.emitMu.Unlock()
	c.emit(ev)
}

// close ends the recording and the announcer once every event is told,
// tells the images not told yet, and returns every image the turn left.
// Call it once the turn's tools are done.
func (c *capture) close() []string {
	<-c.begun
	if c.rec == nil {
		return nil
	}
	if c.stop != nil {
		close(c.stop)
		<-c.announced
	}
	imgs := c.rec.End()
	c.tellImages()
	for _, n := range imgs {
		c.tellImage(n)
	}
	return imgs
}
