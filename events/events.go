// Package events carries the ledger's outbox to NATS JetStream (DESIGN.md
// §4): a Relay publishes every outbox event, in order, to the stream
// QUOTALEDGER with the event id as Nats-Msg-Id and deletes it from the outbox
// only after JetStream acknowledged it, so an event is never lost and the
// stream's duplicate window drops a republish. StartServer runs the embedded
// NATS server that quotaledger uses when no external one is configured.
//
// # Subjects
//
//	quota.commission.<client>.issued|accepted|rejected|expired
//	quota.holding.changed|deleted
//	identity.<...>              the identity event's type, e.g. identity.user.registered
//
// <client> is the commission's client made into one subject token: every
// character but [A-Za-z0-9_-] becomes '_', and an empty client is "_" (the
// payload carries the client as it is). Each token of an identity type is
// cleaned the same way. An event type the package does not know goes to
// quota.other.<type>, so that it still lands in the stream.
//
// # Payload
//
// Every message is one JSON object (see Payload), the same for all types:
//
//	{
//	  "id":       "<database id>-<outbox sequence>", also the Nats-Msg-Id header
//	  "type":     "quotaledger.v1." + the ledger's type, e.g. quotaledger.v1.commission.issued,
//	              quotaledger.v1.holding.changed, quotaledger.v1.identity.user.registered
//	  "time":     RFC 3339 with nanoseconds, UTC: when the change was committed
//	  "serial":   the commission's serial (commission events; omitted when 0)
//	  "client":   the commission's client   (commission events only, always present there)
//	  "name":     the commission's name     (commission events only, always present there)
//	  "reason":   the resolve reason as the ledger records it (commission events only,
//	              always present there): "" when issued, "ACCEPT:<reason>",
//	              "REJECT:<reason>", "REJECT:EXPIRED" for commission.expired
//	  "holdings": [                         (commission and holding events; omitted if none)
//	    {"holder": "...", "source": "..." or null for the null source, "resource": "...",
//	     "quantity": the provision's quantity (0 in holding events),
//	     "limit", "usage_min", "usage_max", "usage" (= usage_max), "pending" (= usage_max -
//	     usage_min): the holding after the change (before it, for holding.deleted)}
//	  ],
//	  "data":     the identity event's own JSON object (identity events; omitted if none)
//	}
//
// Every type, with the Go type of its data, is in the event catalog,
// package events/catalog.
//
// The ids of one database are strictly increasing with the outbox sequence,
// so a consumer can order events and spot a gap by the number after the '-'.
//
// # Not losing an acknowledged event
//
// JetStream acknowledges a publish before it syncs its file store (every 2
// minutes by default), and the relay deletes the outbox entry on the ack.
// Two ways keep a crash from losing events: ServerOptions.SyncAlways (the
// server syncs before each ack; what serve runs), or a ServerOptions.SyncInterval
// with a longer RelayOptions.DeleteDelay (acknowledged events stay in the
// outbox until the stream has synced past them; a restart republishes them
// and the duplicate window drops those the stream kept). BenchmarkRelay
// measures both.
package events

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/quotaledger/quotaledger/ledger"
)

// StreamName is the JetStream stream the relay publishes to.
const StreamName = "QUOTALEDGER"

// TypePrefix versions the payload's type names.
const TypePrefix = "quotaledger.v1."

// Subjects are the subjects of the stream.
var Subjects = []string{"quota.>", "identity.>"}

// Payload is the JSON body of every event message (see the package comment).
// Consumers may decode into it.
type Payload struct {
	ID     string  `json:"id"`
	Type   string  `json:"type"`
	Time   string  `json:"time"`
	Serial uint64  `json:"serial,omitempty"`
	Client *string `json:"client,omitempty"`
	Name   *string `json:"name,omitempty"`
	Reason *string `json:"reason,omitempty"`
	// IssueTime is the commission's issue time (commission events).
	IssueTime string           `json:"issue_time,omitempty"`
	Holdings  []PayloadHolding `json:"holdings,omitempty"`
	Data      json.RawMessage  `json:"data,omitempty"`
}

// PayloadHolding is one holding of a Payload.
type PayloadHolding struct {
	Holder   string  `json:"holder"`
	Source   *string `json:"source"` // nil: the null source
	Resource string  `json:"resource"`
	Quantity int64   `json:"quantity"`
	Limit    int64   `json:"limit"`
	UsageMin int64   `json:"usage_min"`
	UsageMax int64   `json:"usage_max"`
	Usage    int64   `json:"usage"`
	Pending  int64   `json:"pending"`
}

// MsgID returns the id of event seq of the database dbID.
func MsgID(dbID string, seq uint64) string {
	return dbID + "-" + strconv.FormatUint(seq, 10)
}

// Render returns the subject, the message id (Nats-Msg-Id) and the JSON
// payload of e, an outbox event of the database dbID. Data that is not valid
// JSON is carried as a JSON string rather than failing the event.
func Render(dbID string, e ledger.Event) (subject string, msgID string, payload []byte) {
	msgID = MsgID(dbID, e.Seq)
	payload, ok := appendPayload(make([]byte, 0, 256+192*len(e.Holdings)), msgID, &e)
	if !ok {
		payload = marshalPayload(msgID, e)
	}
	return Subject(e), msgID, payload
}

// marshalPayload is e's payload through json.Marshal of its Payload: the
// payload of an event with Data, and what appendPayload must match.
func marshalPayload(msgID string, e ledger.Event) []byte {
	p := Payload{
		ID:     msgID,
		Type:   TypePrefix + e.Type,
		Time:   e.Time.UTC().Format(time.RFC3339Nano),
		Serial: e.Serial,
	}
	if isCommission(e.Type) {
		p.Client, p.Name, p.Reason = &e.Client, &e.Name, &e.Reason
	}
	if !e.IssueTime.IsZero() {
		p.IssueTime = e.IssueTime.UTC().Format(time.RFC3339Nano)
	}
	if len(e.Holdings) > 0 {
		p.Holdings = make([]PayloadHolding, len(e.Holdings))
		for i, h := range e.Holdings {
			p.Holdings[i] = PayloadHolding{
				Holder:   h.Key.Holder,
				Source:   h.Key.Source.Ptr(),
				Resource: h.Key.Resource,
				Quantity: h.Quantity,
				Limit:    h.After.Limit,
				UsageMin: h.After.UsageMin,
				UsageMax: h.After.UsageMax,
				Usage:    h.After.Usage(),
				Pending:  h.After.Pending(),
			}
		}
	}
	if len(e.Data) > 0 {
		if json.Valid(e.Data) {
			p.Data = e.Data
		} else {
			p.Data, _ = json.Marshal(string(e.Data))
		}
	}
	payload, err := json.Marshal(&p)
	if err != nil {
		// Unreachable: every field marshals (Data was checked above).
		panic("events: rendering " + msgID + ": " + err.Error())
	}
	return payload
}

const commissionPrefix = "commission."

func isCommission(typ string) bool { return strings.HasPrefix(typ, commissionPrefix) }

// Subject returns the subject of e (see the package comment).
func Subject(e ledger.Event) string {
	var b strings.Builder
	switch {
	case isCommission(e.Type):
		b.WriteString("quota.commission.")
		writeToken(&b, e.Client)
		b.WriteByte('.')
		writeTokens(&b, e.Type[len(commissionPrefix):])
	case strings.HasPrefix(e.Type, "holding."):
		b.WriteString("quota.")
		writeTokens(&b, e.Type)
	case strings.HasPrefix(e.Type, "identity."):
		writeTokens(&b, e.Type)
	default:
		b.WriteString("quota.other.")
		writeTokens(&b, e.Type)
	}
	return b.String()
}

// writeTokens writes s, a dot-separated name, with each token cleaned.
func writeTokens(b *strings.Builder, s string) {
	for i, t := range strings.Split(s, ".") {
		if i > 0 {
			b.WriteByte('.')
		}
		writeToken(b, t)
	}
}

// writeToken writes s as one subject token: anything but [A-Za-z0-9_-]
// becomes '_' (one per character), and an empty s is "_".
func writeToken(b *strings.Builder, s string) {
	if s == "" {
		b.WriteByte('_')
		return
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
}
