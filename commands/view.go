package commands

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/vmd-dev/vmd/store"
)

// View is a record as the API shows it and the completion webhook carries
// it. Times are RFC 3339 in UTC, null until they happen.
type View struct {
	ID             string          `json:"id"`
	State          State           `json:"state"`
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
	v := View{ID: r.ID, State: r.State, CreatedAt: when(r.CreatedAt), StartedAt: when(r.StartedAt),
		EndedAt: when(r.EndedAt), PromptLength: r.PromptLen, SessionID: nonEmpty(r.SessionID),
		IdempotencyKey: nonEmpty(r.IdempotencyKey), Machine: r.Machine, Response: json.RawMessage("null")}
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

// MarshalRecord is a stored record's View as JSON, its response as the
// answer had it (< > & unescaped).
func MarshalRecord(r store.Record) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(ViewOf(r)) // cannot fail: ViewOf leaves out a body that is not JSON
	return bytes.TrimRight(buf.Bytes(), "\n")
}

func when(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
