package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/messaging/v2/claims"
	"github.com/gophercloud/gophercloud/v2/openstack/messaging/v2/messages"
	"github.com/gophercloud/gophercloud/v2/openstack/messaging/v2/queues"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// TestGophercloud drives the server with gophercloud's messaging v2 client,
// a Zaqar client we did not write: queues, messages, claims, pop, stats,
// share and purge, as an application would use them.
func TestGophercloud(t *testing.T) { gophercloudFlow(t, newEnv(t, envOpts{real: true})) }

// TestGophercloudRemote runs the same client flow over the real Swift and
// S3 stores (the smaller end-to-end set the CI runs on remote stores).
func TestGophercloudRemote(t *testing.T) {
	for _, name := range []string{"swift", "s3api", "versitygw"} {
		t.Run(name, func(t *testing.T) {
			gophercloudFlow(t, newEnv(t, envOpts{real: true, store: remoteStore(t, name)}))
		})
	}
}

func gophercloudFlow(t *testing.T, e *env) {
	ctx := context.Background()
	// A no-auth service client, as openstack.NewMessagingV2 builds one
	// after authenticating: Client-ID comes from MoreHeaders.
	sc := &gophercloud.ServiceClient{
		ProviderClient: &gophercloud.ProviderClient{HTTPClient: *e.http},
		Endpoint:       e.url + "/",
		Type:           "messaging",
		MoreHeaders:    map[string]string{"Client-ID": clientA, "X-Project-ID": project},
	}
	const qn = "gophercloud"

	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	check("create queue", queues.Create(ctx, sc, queues.CreateOpts{
		QueueName: qn, DefaultMessageTTL: 3600, MaxMessagesPostSize: 262144,
		Extra: map[string]any{"description": "made by gophercloud"},
	}).ExtractErr())
	check("create another", queues.Create(ctx, sc, queues.CreateOpts{QueueName: qn + "-2", DefaultMessageTTL: 600}).ExtractErr())

	details, err := queues.Get(ctx, sc, qn).Extract()
	check("get queue", err)
	if details.DefaultMessageTTL != 3600 || details.MaxMessagesPostSize != 262144 || details.Extra["description"] != "made by gophercloud" {
		t.Fatalf("queue details %+v", details)
	}
	updated, err := queues.Update(ctx, sc, qn, queues.BatchUpdateOpts{
		{Op: queues.ReplaceOp, Path: "/metadata/description", Value: "updated"},
		{Op: queues.AddOp, Path: "/metadata/_default_message_ttl", Value: 1800},
	}).Extract()
	check("update queue", err)
	if updated.Extra["description"] != "updated" || updated.DefaultMessageTTL != 1800 {
		t.Fatalf("updated %+v", updated)
	}

	var names []string
	check("list queues", queues.List(sc, queues.ListOpts{Limit: 1}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		qs, err := queues.ExtractQueues(p)
		for _, q := range qs {
			names = append(names, q.Name)
		}
		return true, err
	}))
	if strings.Join(names, ",") != qn+","+qn+"-2" {
		t.Fatalf("paged listing: %v", names)
	}

	var bodies []messages.CreateOpts
	for i := range 5 {
		bodies = append(bodies, messages.CreateOpts{TTL: 300, Body: map[string]any{"n": i}})
	}
	posted, err := messages.Create(ctx, sc, qn, messages.BatchCreateOpts(bodies)).Extract()
	check("post", err)
	if len(posted.Resources) != 5 {
		t.Fatalf("resources %v", posted.Resources)
	}
	ids := make([]string, 5)
	for i, r := range posted.Resources {
		ids[i] = r[strings.LastIndex(r, "/")+1:]
	}

	var listed []messages.Message
	check("list messages", messages.List(sc, qn, messages.ListOpts{Echo: true, Limit: 2}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		ms, err := messages.ExtractMessages(p)
		listed = append(listed, ms...)
		return true, err
	}))
	if len(listed) != 5 || listed[0].ID != ids[0] || listed[4].Body["n"] != float64(4) || listed[0].TTL != 300 {
		t.Fatalf("listed %+v", listed)
	}
	got, err := messages.GetMessages(ctx, sc, qn, messages.GetMessagesOpts{IDs: ids[1:3]}).Extract()
	check("get by ids", err)
	if len(got) != 2 || got[0].ID != ids[1] {
		t.Fatalf("by ids %+v", got)
	}
	one, err := messages.Get(ctx, sc, qn, ids[0]).Extract()
	check("get one", err)
	if one.ID != ids[0] || one.Body["n"] != float64(0) {
		t.Fatalf("one %+v", one)
	}

	claimed, err := claims.Create(ctx, sc, qn, claims.CreateOpts{TTL: 300, Grace: 60, Limit: 2}).Extract()
	check("claim", err)
	if len(claimed) != 2 {
		t.Fatalf("claimed %+v", claimed)
	}
	claimID := claimed[0].Href[strings.Index(claimed[0].Href, "claim_id=")+len("claim_id="):]
	c, err := claims.Get(ctx, sc, qn, claimID).Extract()
	check("get claim", err)
	if c.TTL != 300 || len(c.Messages) != 2 || !strings.HasSuffix(c.Href, "/claims/"+claimID) {
		t.Fatalf("claim %+v", c)
	}
	check("update claim", claims.Update(ctx, sc, qn, claimID, claims.UpdateOpts{TTL: 600, Grace: 120}).ExtractErr())
	if c, err = claims.Get(ctx, sc, qn, claimID).Extract(); err != nil || c.TTL != 600 {
		t.Fatalf("claim after update %+v %v", c, err)
	}

	err = messages.Delete(ctx, sc, qn, ids[0], nil).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("delete of a claimed message without its claim: %v", err)
	}
	check("delete with claim", messages.Delete(ctx, sc, qn, ids[0], messages.DeleteOpts{ClaimID: claimID}).ExtractErr())
	check("release claim", claims.Delete(ctx, sc, qn, claimID).ExtractErr())

	popped, err := messages.PopMessages(ctx, sc, qn, messages.PopMessagesOpts{Pop: 2}).Extract()
	check("pop", err)
	if len(popped) != 2 || popped[0].ID != ids[1] || popped[1].ID != ids[2] || popped[0].Body["n"] != float64(1) {
		t.Fatalf("popped %+v", popped)
	}

	stats, err := queues.GetStats(ctx, sc, qn).Extract()
	check("stats", err)
	if stats.Total != 2 || stats.Free != 2 || stats.Claimed != 0 {
		t.Fatalf("stats %+v", stats)
	}

	share, err := queues.Share(ctx, sc, qn, queues.ShareOpts{Paths: []queues.SharePath{queues.PathMessages}, Methods: []queues.ShareMethod{queues.MethodGet}}).Extract()
	check("share", err)
	signed := func(sig string) int {
		r, _ := http.NewRequest("GET", e.url+"/v2/queues/"+qn+"/messages?echo=true", nil)
		r.Header.Set("Client-ID", clientB)
		r.Header.Set("X-Project-ID", share.Project)
		r.Header.Set("URL-Signature", sig)
		r.Header.Set("URL-Expires", share.Expires)
		r.Header.Set("URL-Methods", strings.Join(share.Methods, ","))
		r.Header.Set("URL-Paths", strings.Join(share.Paths, ","))
		res, err := e.http.Do(r)
		check("signed request", err)
		res.Body.Close()
		return res.StatusCode
	}
	if st := signed(share.Signature); st != http.StatusOK {
		t.Fatalf("signed URL: %d", st)
	}
	if st := signed(strings.Repeat("0", 64)); st != http.StatusNotFound {
		t.Fatalf("bad signature: %d", st)
	}

	check("delete by ids", messages.DeleteMessages(ctx, sc, qn, messages.DeleteMessagesOpts{IDs: ids[3:4]}).ExtractErr())
	check("purge", queues.Purge(ctx, sc, qn, queues.PurgeOpts{ResourceTypes: []queues.PurgeResource{queues.ResourceMessages}}).ExtractErr())
	stats, err = queues.GetStats(ctx, sc, qn).Extract()
	check("stats after purge", err)
	if stats.Total != 0 {
		t.Fatalf("stats after purge %+v", stats)
	}
	check("delete queue", queues.Delete(ctx, sc, qn).ExtractErr())
	check("delete queue 2", queues.Delete(ctx, sc, qn+"-2").ExtractErr())
	names = nil
	check("list after delete", queues.List(sc, nil).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		qs, err := queues.ExtractQueues(p)
		for _, q := range qs {
			names = append(names, q.Name)
		}
		return true, err
	}))
	if len(names) != 0 {
		t.Fatalf("queues left: %v", names)
	}
	var unexpected gophercloud.ErrUnexpectedResponseCode
	if err := claims.Update(ctx, sc, qn, claimID, claims.UpdateOpts{TTL: 60}).ExtractErr(); !errors.As(err, &unexpected) || unexpected.Actual != http.StatusNotFound {
		t.Fatalf("update of a gone claim: %v", err)
	}
}
