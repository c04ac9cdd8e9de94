package wire

// The messages of holdings and the provision log (/account/v1.0/holdings,
// commissions/{serial}/log, history).

// HoldingKey names a holding; a nil Source is the null source.
type HoldingKey struct {
	Holder   string  `json:"holder"`
	Source   *string `json:"source"`
	Resource string  `json:"resource"`
}

// HoldingKeys is the body and the answer of DELETE holdings.
type HoldingKeys struct {
	Holdings []HoldingKey `json:"holdings"`
}

// HoldingSetting is a holding's limit to set; a left-out Source is the
// null source.
type HoldingSetting struct {
	HoldingKey
	Limit *int64 `json:"limit"`
}

// HoldingSettings is the body of POST holdings.
type HoldingSettings struct {
	Holdings []HoldingSetting `json:"holdings"`
}

// Holding is a holding with its limit and usage.
type Holding struct {
	HoldingKey
	Limit    int64 `json:"limit"`
	UsageMin int64 `json:"usage_min"`
	UsageMax int64 `json:"usage_max"`
}

// Usage is the holding's usage as the quotas show it (usage_max).
func (h Holding) Usage() int64 { return h.UsageMax }

// Pending is usage_max - usage_min.
func (h Holding) Pending() int64 { return h.UsageMax - h.UsageMin }

// Holdings is the answer of GET and POST holdings.
type Holdings struct {
	Holdings []Holding `json:"holdings"`
}

// LogEntry is one line of the provision log: a provision of a resolved
// commission and the holding after it.
type LogEntry struct {
	Serial    int64  `json:"serial"`
	Client    string `json:"client"`
	Name      string `json:"name"`
	IssueTime Time   `json:"issue_time"`
	LogTime   Time   `json:"log_time"`
	HoldingKey
	Quantity int64  `json:"quantity"`
	Limit    int64  `json:"limit"`
	UsageMin int64  `json:"usage_min"`
	UsageMax int64  `json:"usage_max"`
	Reason   string `json:"reason"` // ACCEPT:..., REJECT:..., EXPIRED
}
