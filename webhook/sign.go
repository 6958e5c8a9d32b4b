// Package webhook delivers vmd's completion webhooks from the store's
// outbox, signed as the Standard Webhooks specification says
// (https://www.standardwebhooks.com/), so any Standard Webhooks library
// verifies them.
//
// A delivery is written to the outbox by store.Finish in the same
// transaction as the command's end; the Sender posts it at least once,
// retrying with exponential backoff and jitter, and records each attempt
// on the record. Its state lives in the store, so a restart resumes where
// the last run stopped.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// EventCompleted is the payload type of a command's completion.
const EventCompleted = "command.completed"

const secretPrefix = "whsec_"

// The key lengths the specification recommends.
const (
	minKey = 24
	maxKey = 64
)

// Secret is a signing key.
type Secret struct {
	key []byte
}

// ParseSecret reads a secret in the specification's form: "whsec_"
// followed by 24 to 64 random bytes in standard base64.
func ParseSecret(s string) (Secret, error) {
	const fix = `make one with: echo "whsec_$(openssl rand -base64 32)"`
	b64, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("webhook_secret must start with %q; %s", secretPrefix, fix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return Secret{}, fmt.Errorf("webhook_secret is not base64 after %q; %s: %w", secretPrefix, fix, err)
	}
	if len(key) < minKey || len(key) > maxKey {
		return Secret{}, fmt.Errorf("webhook_secret holds %d bytes, want %d to %d; %s",
			len(key), minKey, maxKey, fix)
	}
	return Secret{key: key}, nil
}

// Sign returns the webhook-signature header for a message: "v1," and the
// base64 HMAC-SHA256 of "id.timestamp.body".
func (k Secret) Sign(id string, ts time.Time, body []byte) string {
	h := hmac.New(sha256.New, k.key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, ts.Unix(), 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Payload wraps a record's JSON in the completion event the receiver gets:
// {"type":"command.completed","timestamp":"<RFC 3339>","data":<record>}.
// The caller passes it to store.Finish as End.Webhook.
func Payload(record []byte, at time.Time) ([]byte, error) {
	if !json.Valid(record) {
		return nil, errors.New("webhook payload: the record is not valid JSON")
	}
	return json.Marshal(struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{EventCompleted, at.UTC().Format(time.RFC3339Nano), record})
}
