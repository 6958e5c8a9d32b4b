package commands

import (
	"encoding/json"
	"time"

	"github.com/vmd-dev/vmd/outcome"
	"github.com/vmd-dev/vmd/store"
)

// View is a record as the API shows it and the completion webhook carries
// it. Times are RFC 3339 in UTC, null until they happen.
type View struct {
	ID             string          `json:"id"`
	State          string          `json:"state"` // queued, running, or how it ended (see outcome.State)
	CreatedAt      *time.Time      `json:"createdAt"`
	StartedAt      *time.Time      `json:"startedAt"`
	EndedAt        *time.Time      `json:"endedAt"`
	PromptLength   int             `json:"promptLength"`
	SessionID      *string         `json:"sessionId"`
	IdempotencyKey *string         `json:"idempotencyKey"`
	Machine        string          `json:"machine"`
	Status         *int            `json:"status"`   // the answer's HTTP status once ended
	Response       json.RawMessage `json:"response"` // the exact answer body once ended, else null
	Webhook        *WebhookView    `json:"webhook"`  // null without a completion webhook
	Warm           bool            `json:"warm"`     // its turn went to an agent already running
	Warning        string          `json:"warning,omitempty"`
}

// WebhookView is the completion webhook's delivery as a View shows it.
type WebhookView struct {
	State       string     `json:"state"` // pending, delivered, gone, expired
	Attempts    int        `json:"attempts"`
	LastStatus  *int       `json:"lastStatus"`
	DeliveredAt *time.Time `json:"deliveredAt"`
}

// ViewOf is a stored record's View.
func ViewOf(r store.Record) View {
	v := View{ID: r.ID, State: stateName(r.State), Warm: r.Warm, CreatedAt: when(r.CreatedAt), StartedAt: when(r.StartedAt),
		EndedAt: when(r.EndedAt), PromptLength: r.PromptLen, SessionID: optional(r.SessionID),
		IdempotencyKey: optional(r.IdempotencyKey), Machine: r.Machine, Response: json.RawMessage("null")}
	if r.Status != 0 {
		v.Status = &r.Status
	}
	if json.Valid(r.Body) {
		v.Response = r.Body
	}
	if w := r.Webhook; w.State != store.DeliveryNone {
		v.Webhook = &WebhookView{State: string(w.State), Attempts: w.Attempts, DeliveredAt: when(w.DeliveredAt)}
		if w.LastStatus != 0 {
			v.Webhook.LastStatus = &w.LastStatus
		}
	}
	return v
}

// stateName is a stored state as a record shows it: queued, running, or
// the state of the outcome it names.
func stateName(st State) string {
	if o := outcome.Outcome(st); o.Known() {
		return o.State()
	}
	return string(st)
}

// View is the command's View as it is now, saying so when the store does
// not have it yet.
func (c *Command) View() View {
	v := ViewOf(c.Stored())
	c.mu.Lock()
	v.Warning = c.rec.unstored
	c.mu.Unlock()
	return v
}

// MarshalRecord is a stored record's View as JSON, its response as the
// answer had it (< > & unescaped).
func MarshalRecord(r store.Record) []byte {
	b, _ := marshalCompact(ViewOf(r)) // cannot fail: ViewOf leaves out a body that is not JSON
	return b
}

func when(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
