package realtime_test

import (
	"slices"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/realtime"
)

// A user's contacts, told of their presence, are the members of their
// private conversations and of their groups up to PresenceGroupLimit
// members; a group that grows past it stops counting.
func TestContactsLeaveOutLargeGroups(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		svc := realtime.New(d, abacus.SystemClock{}, nil, nil, realtime.Config{PresenceGroupLimit: 3})
		ctx := tenantCtx()
		conversation(t, svc, realtime.KindPrivate, "ann", "ben")
		small := conversation(t, svc, realtime.KindGroup, "ann", "cat", "dan")
		conversation(t, svc, realtime.KindGroup, "ann", "eve", "fay", "gus")
		contacts := func(want ...string) {
			t.Helper()
			got, err := svc.Contacts(ctx, tenant, "ann")
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("contacts %v, want %v", got, want)
			}
		}
		contacts("ben", "cat", "dan")
		if _, err := svc.AddMembers(ctx, small, realtime.MembersInput{UserIDs: []string{"hal"}}); err != nil {
			t.Fatal(err)
		}
		contacts("ben")
	})
}
