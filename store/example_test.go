package store_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/vmd-dev/vmd/outcome"
	"github.com/vmd-dev/vmd/store"
)

// A command's life as the commands layer drives it.
func Example() {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Memory, store.Options{}) // state_dir in production
	if err != nil {
		log.Fatal(err) // main: exit 1, the error names the file and the fix
	}
	defer st.Close()

	// Idempotency-Key and a hash of the body; created is false for a retry.
	rec, created, err := st.Create(ctx, store.NewRecord{
		IdempotencyKey: "wamid.HBgL", BodyHash: []byte("sha256 of the body"), PromptLen: 11,
		StartedAt: time.Now(), // vmd writes the record once the CLI has started
	})
	if err != nil {
		log.Fatal(err)
	}
	total, _ := st.AppendEvent(ctx, rec.ID, store.Event{Seq: 1, Type: "message", Data: []byte(`{"text":"hi"}`)})
	_ = st.Finish(ctx, rec.ID, store.End{
		State: store.State(outcome.Succeeded), Status: 200, Body: []byte(`{"result":"hi"}`),
		Webhook: nil, // webhook.Payload(recordJSON, ended) when webhooks are on; then Sender.Notify()
	})

	again, created2, _ := st.Create(ctx, store.NewRecord{IdempotencyKey: "wamid.HBgL"})
	fmt.Println(created, total, created2, again.ID == rec.ID, again.State, again.Status, string(again.Body))
	// Output: true 13 false true succeeded 200 {"result":"hi"}
}
