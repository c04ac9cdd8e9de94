package main

import "github.com/quotaledger/quotaledger/api/client"

// HistoryCmd queries the provision log.
type HistoryCmd struct {
	ClientFlags `embed:""`
	Holder      string `name:"holder" help:"The holder (default: your own holdings)."`
	Resource    string `name:"resource" help:"Only this resource."`
	Serial      int64  `name:"serial" help:"Only this commission."`
	Limit       int    `name:"limit" default:"100" help:"At most this many entries."`
}

// Run prints the entries of the provision log the flags select.
func (cmd *HistoryCmd) Run(e *cliEnv) error {
	if cmd.Limit <= 0 {
		return usageError("--limit must be positive")
	}
	h, err := e.c.FindHistory(e.ctx, client.HistoryFilter{Holder: cmd.Holder, Resource: cmd.Resource, Serial: cmd.Serial, Limit: cmd.Limit})
	if err != nil {
		return err
	}
	return e.show(h, func() error {
		tw := e.table("SERIAL", "TIME", "HOLDER", "SOURCE", "RESOURCE", "QUANTITY", "LIMIT", "USAGE", "REASON")
		for _, l := range h.Results {
			row(tw, l.Serial, fmtTime(l.LogTime), l.Holder, srcString(l.Source), l.Resource, l.Quantity, l.Limit, l.UsageMax, l.Reason)
		}
		return tw.Flush()
	})
}
