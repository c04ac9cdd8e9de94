package client_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/backup"
)

func TestBackup(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var buf bytes.Buffer
	n, err := e.admin.Backup(ctx, &buf)
	check(t, "GET /account/v1.0/backup", err)
	if n != int64(buf.Len()) || n == 0 {
		t.Fatalf("backup: %d bytes said, %d written", n, buf.Len())
	}
	m, err := backup.Read(bytes.NewReader(buf.Bytes()), nil)
	if err != nil || m.Format != backup.Format || len(m.Files) == 0 {
		t.Fatalf("the archive: %+v %v", m, err)
	}
	buf.Reset()
	_, err = e.user.Backup(ctx, &buf)
	wantErr[*client.Forbidden](t, "a user's backup", err, 403)
	_, err = e.anon.Backup(ctx, &buf)
	wantErr[*client.Unauthorized](t, "an anonymous backup", err, 401)
	if buf.Len() != 0 {
		t.Fatalf("a refused backup wrote %d bytes", buf.Len())
	}
}
