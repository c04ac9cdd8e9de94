package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/quotaledger/quotaledger/api/client"
)

// CommissionCmd lists, shows, resolves and issues commissions (with a
// service's token), over HTTP or, with --nats, over NATS; and lists and
// resolves every service's pending ones (admins, over HTTP).
type CommissionCmd struct {
	ClientFlags `embed:""`
	NATSFlags   `embed:""`
	List        CommissionListCmd    `cmd:"" help:"List the serials of the service's pending commissions."`
	Show        CommissionShowCmd    `cmd:"" help:"Show a pending commission."`
	Accept      CommissionAcceptCmd  `cmd:"" help:"Accept a pending commission."`
	Reject      CommissionRejectCmd  `cmd:"" help:"Reject a pending commission."`
	Issue       CommissionIssueCmd   `cmd:"" help:"Issue a commission: --holder, --source, --provision RES=QTY..., or --file with the JSON body."`
	Pending     CommissionPendingCmd `cmd:"" help:"List every service's pending commissions, oldest first, with their age (admins, readers)."`
	Resolve     CommissionResolveCmd `cmd:"" help:"Accept and reject pending commissions of any service (admins; the provision log says ADMIN:<your uuid>)."`
}

// CommissionResolveCmd accepts and rejects any service's pending
// commissions (admins).
type CommissionResolveCmd struct {
	Accept []int64 `name:"accept" sep:"," placeholder:"SERIAL,..." help:"Serials to accept."`
	Reject []int64 `name:"reject" sep:"," placeholder:"SERIAL,..." help:"Serials to reject."`
	Reason string  `name:"reason" help:"A reason, logged after ADMIN:<your uuid>."`
}

// Run resolves the serials; one that could not be resolved is shown with
// why, and makes the exit code 1.
func (cmd *CommissionResolveCmd) Run(e *cliEnv) error {
	if e.nc != nil {
		return usageError("commission resolve: an admin's call, over HTTP only (--nats is for a service's calls)")
	}
	if len(cmd.Accept)+len(cmd.Reject) == 0 {
		return usageError("commission resolve: give --accept or --reject serials")
	}
	res, err := e.c.ResolvePendingCommissions(e.ctx, cmd.Accept, cmd.Reject, cmd.Reason)
	if err != nil {
		return err
	}
	err = nil
	if len(res.Failed) > 0 {
		err = &ExitError{Code: 1, Err: fmt.Errorf("%d of the serials not resolved", len(res.Failed))}
	}
	if e.flags.JSON {
		type failed struct {
			Serial int64  `json:"serial"`
			Error  string `json:"error"`
		}
		out := struct {
			Accepted []int64  `json:"accepted"`
			Rejected []int64  `json:"rejected"`
			Failed   []failed `json:"failed"`
		}{res.Accepted, res.Rejected, []failed{}}
		for _, f := range res.Failed {
			out.Failed = append(out.Failed, failed{f.Serial, f.Err.Error()})
		}
		if perr := e.printJSON(out); perr != nil {
			return perr
		}
		return err
	}
	tw := e.table("SERIAL", "OUTCOME")
	for _, s := range res.Accepted {
		row(tw, s, "accepted")
	}
	for _, s := range res.Rejected {
		row(tw, s, "rejected")
	}
	for _, f := range res.Failed {
		row(tw, f.Serial, f.Err.Error())
	}
	if ferr := tw.Flush(); ferr != nil {
		return ferr
	}
	return err
}

// CommissionPendingCmd lists every service's pending commissions.
type CommissionPendingCmd struct {
	Service   string        `name:"service" help:"Only this service's."`
	OlderThan time.Duration `name:"older-than" help:"Only those pending longer than this (e.g. 1h)."`
}

// Run lists the pending commissions of every service (or --service's).
func (cmd *CommissionPendingCmd) Run(e *cliEnv) error {
	if e.nc != nil {
		return usageError("commission pending: an admin's call, over HTTP only (--nats is for a service's calls)")
	}
	ps, err := allPages(func(po client.PageOptions) (*client.Page[client.PendingCommission], error) {
		return e.c.FindPendingCommissions(e.ctx, client.PendingFilter{Service: cmd.Service, OlderThan: cmd.OlderThan, PageOptions: po})
	})
	if err != nil {
		return err
	}
	return e.show(ps, func() error {
		tw := e.table("SERIAL", "SERVICE", "NAME", "ISSUED", "AGE", "DEADLINE", "PROVISIONS")
		for _, p := range ps {
			row(tw, p.Serial, p.Service, orDash(p.Name), fmtTime(p.IssueTime), time.Duration(p.Age)*time.Second, fmtTime(p.Deadline), len(p.Provisions))
		}
		return tw.Flush()
	})
}

// CommissionListCmd lists pending commissions.
type CommissionListCmd struct{}

// CommissionShowCmd shows one.
type CommissionShowCmd struct {
	Serial string `arg:"" help:"The commission's serial."`
}

// CommissionResolve is what accept and reject take.
type CommissionResolve struct {
	Serial string `arg:"" help:"The commission's serial."`
	Reason string `name:"reason" help:"A reason for the provision log."`
}

// CommissionAcceptCmd accepts one.
type CommissionAcceptCmd struct {
	CommissionResolve `embed:""`
}

// CommissionRejectCmd rejects one.
type CommissionRejectCmd struct {
	CommissionResolve `embed:""`
}

// CommissionIssueCmd issues one.
type CommissionIssueCmd struct {
	File       string   `name:"file" type:"path" help:"A JSON file with the commission: {\"name\",\"force\",\"auto_accept\",\"provisions\":[{\"holder\",\"source\",\"resource\",\"quantity\"}]}."`
	Holder     string   `name:"holder" help:"The holder of every provision."`
	Source     string   `name:"source" default:"-" help:"The source of every provision (- for the null source)."`
	Provision  []string `name:"provision" short:"p" help:"RESOURCE=QUANTITY (repeatable)."`
	Name       string   `name:"name" help:"The commission's name."`
	Force      bool     `name:"force" help:"Issue past the limits."`
	AutoAccept bool     `name:"auto-accept" help:"Accept at once."`
	TTL        int64    `name:"ttl" help:"Seconds it may stay pending (0: the server's default)."`
}

// Run lists the serials of the service's pending commissions.
func (cmd *CommissionListCmd) Run(e *cliEnv) error {
	serials, err := e.svc.GetPendingCommissions(e.ctx)
	if err != nil {
		return err
	}
	return e.show(serials, func() error {
		tw := e.table("SERIAL")
		for _, s := range serials {
			row(tw, s)
		}
		return tw.Flush()
	})
}

// Run shows a pending commission.
func (cmd *CommissionShowCmd) Run(e *cliEnv) error {
	serial, err := parseSerial(cmd.Serial)
	if err != nil {
		return err
	}
	ci, err := e.svc.GetCommissionInfo(e.ctx, serial)
	if err != nil {
		return err
	}
	return e.show(ci, func() error {
		fmt.Fprintf(e.stdout, "serial %d  name %q  issued %s\n", ci.Serial, ci.Name, fmtTime(ci.IssueTime))
		tw := e.table("HOLDER", "SOURCE", "RESOURCE", "QUANTITY")
		for _, p := range ci.Provisions {
			row(tw, p.Holder, srcString(p.Source), p.Resource, p.Quantity)
		}
		return tw.Flush()
	})
}

// Run accepts the commission.
func (cmd *CommissionAcceptCmd) Run(e *cliEnv) error { return cmd.resolve(e, client.ActionAccept) }

// Run rejects the commission.
func (cmd *CommissionRejectCmd) Run(e *cliEnv) error { return cmd.resolve(e, client.ActionReject) }

// resolve applies action (client.ActionAccept or client.ActionReject).
func (cmd *CommissionResolve) resolve(e *cliEnv, action string) error {
	serial, err := parseSerial(cmd.Serial)
	if err != nil {
		return err
	}
	if err := e.svc.CommissionActionReason(e.ctx, serial, action, cmd.Reason); err != nil {
		return err
	}
	if e.flags.JSON {
		return e.printJSON(map[string]any{"serial": serial, "action": action})
	}
	fmt.Fprintf(e.stdout, "%sed commission %d\n", strings.TrimSuffix(action, "e"), serial)
	return nil
}

// Run issues the commission of --file, or of --holder and --provision.
func (cmd *CommissionIssueCmd) Run(e *cliEnv) error {
	var cm client.Commission
	if cmd.File != "" {
		if cmd.Holder != "" || len(cmd.Provision) > 0 {
			return usageError("commission issue: give either --file or --holder and --provision, not both")
		}
		b, err := os.ReadFile(cmd.File)
		if err != nil {
			return usageError("commission issue: %v", err)
		}
		if err := json.Unmarshal(b, &cm); err != nil {
			return usageError("commission issue: %s: %v", cmd.File, err)
		}
	} else {
		if cmd.Holder == "" || len(cmd.Provision) == 0 {
			return usageError("commission issue: want --holder and at least one --provision RESOURCE=QUANTITY, or --file")
		}
		for _, p := range cmd.Provision {
			r, q, ok := strings.Cut(p, "=")
			n, err := strconv.ParseInt(q, 10, 64)
			if !ok || r == "" || err != nil {
				return usageError("--provision %q: want RESOURCE=QUANTITY", p)
			}
			cm.Provisions = append(cm.Provisions, client.Provision{Holder: cmd.Holder, Source: parseSource(cmd.Source), Resource: r, Quantity: n})
		}
	}
	if cmd.Name != "" {
		cm.Name = cmd.Name
	}
	cm.Force = cm.Force || cmd.Force
	cm.AutoAccept = cm.AutoAccept || cmd.AutoAccept
	if cmd.TTL > 0 {
		cm.TTL = cmd.TTL
	}
	serial, err := e.svc.IssueCommission(e.ctx, cm)
	if err != nil {
		return err
	}
	if e.flags.JSON {
		return e.printJSON(map[string]int64{"serial": serial})
	}
	fmt.Fprintf(e.stdout, "issued commission %d\n", serial)
	return nil
}
