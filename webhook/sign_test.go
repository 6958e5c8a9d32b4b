package webhook

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testSecret is a valid secret: 32 bytes.
var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func TestParseSecret(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	tests := []struct {
		in     string
		wantOK bool
	}{
		{testSecret, true},
		{"whsec_" + b64(24), true},
		{"whsec_" + b64(64), true},
		{"whsec_" + b64(23), false},
		{"whsec_" + b64(65), false},
		{b64(32), false},             // no prefix
		{"whsec_not base64!", false}, // not base64
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseSecret(tt.in)
			if (err == nil) != tt.wantOK {
				t.Errorf("ParseSecret(%q) = %v; want ok %v", tt.in, err, tt.wantOK)
			}
			if err != nil && !strings.Contains(err.Error(), "openssl rand") {
				t.Errorf("ParseSecret(%q) = %v; want it to say how to make one", tt.in, err)
			}
		})
	}
}

// TestSignVerifiesWithLibrary checks Sign against the Standard Webhooks
// reference library, not against this package's own code.
func TestSignVerifiesWithLibrary(t *testing.T) {
	t.Parallel()
	secret, err := ParseSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		id   string
		body string
	}{
		{"0192f3a4-5b6c-7d8e-9f01-23456789abcd", `{"type":"command.completed"}`},
		{"msg_2", ""},
		{"id.with.dots", "{\"text\":\"ünïcode\\n\"}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			h := http.Header{}
			h.Set(HeaderID, tt.id)
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
			h.Set(HeaderSignature, secret.Sign(tt.id, now, []byte(tt.body)))
			if err := wh.Verify([]byte(tt.body), h); err != nil {
				t.Errorf("library Verify(Sign(%q, %q)) = %v; want nil", tt.id, tt.body, err)
			}
			h.Set(HeaderSignature, secret.Sign(tt.id, now, []byte(tt.body+" ")))
			if err := wh.Verify([]byte(tt.body), h); err == nil {
				t.Errorf("library Verify(signature of another body) = nil; want an error")
			}
		})
	}
}

func TestPayload(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 30, 8, 0, 0, 5e8, time.FixedZone("x", 3600))
	got, err := Payload([]byte(`{"id":"a","state":"succeeded"}`), at)
	want := `{"type":"command.completed","timestamp":"2026-11-30T07:00:00.5Z","data":{"id":"a","state":"succeeded"}}`
	if err != nil || string(got) != want {
		t.Errorf("Payload = %s, %v; want %s", got, err, want)
	}
	var v map[string]any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Errorf("Payload is not JSON: %v", err)
	}
	if _, err := Payload([]byte(`{"id":`), at); err == nil {
		t.Errorf("Payload(invalid JSON) = nil error; want one")
	}
}
