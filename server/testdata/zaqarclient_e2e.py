#!/usr/bin/python3
"""Drive a Zaqar v2 endpoint with python-zaqarclient (Debian's
python3-zaqarclient) and check every answer.

    /usr/bin/python3 zaqarclient_e2e.py http://127.0.0.1:8888 [project]

Queue create, list, metadata get/update (json-patch), post, list, get by id
and ids, claim, query and update the claim, delete with the claim id,
release, pop, stats, delete by ids, purge, subscriptions (create, the same
subscriber again, get, list, update, delete), delete the queue. Exits 1 at the
first mismatch, 2 on a usage error. Written for Cistern's server tests
(server/zaqarclient_test.go runs it); it works against a real Zaqar too.
"""

import sys
import uuid

from zaqarclient.queues import client as zclient
from zaqarclient.queues.v2 import core
from zaqarclient.transport import errors as zerrors

checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        print("FAIL: %s" % what)
        sys.exit(1)


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        sys.exit(2)
    url = sys.argv[1]
    project = sys.argv[2] if len(sys.argv) == 3 else "zaqarclient-e2e"
    # zaqarclient sends X-Project-Id from os_project_id and, by default, a
    # hyphen-less uuid4 as Client-ID: both are part of what this checks.
    conf = {"auth_opts": {"backend": "noauth", "options": {"os_project_id": project}}}
    cli = zclient.Client(url, version=2, conf=conf)
    name = "zc-" + uuid.uuid4().hex[:12]

    # Queue create (PUT on first use), list, metadata.
    q = cli.queue(name, force_create=True)  # v2 queues are lazy otherwise
    listed, _ = cli.queues(with_count=True)
    names = [x.name for x in listed]
    check(name in names, "queue %s listed in %s" % (name, names))
    meta = q.metadata(force_reload=True)
    check(meta.get("_default_message_ttl") == 3600, "default ttl in %s" % meta)
    meta = q.metadata(new_meta={"description": "e2e", "_default_message_ttl": 1800})
    check(meta.get("description") == "e2e" and meta.get("_default_message_ttl") == 1800,
          "metadata after update: %s" % meta)

    # Post, list (as another client: echo is off by default), get.
    posted = q.post([{"body": {"n": i}, "ttl": 600} for i in range(10)])
    check(len(posted["resources"]) == 10, "10 resources: %s" % posted)
    ids = [r.rsplit("/", 1)[1] for r in posted["resources"]]
    mine = list(q.messages(echo=False))
    check(mine == [], "own messages hidden without echo: %s" % mine)
    msgs = list(q.messages(echo=True))
    check([m.id for m in msgs] == ids, "listing %s != posted %s" % ([m.id for m in msgs], ids))
    check([m.body["n"] for m in msgs] == list(range(10)), "bodies in order")
    check(all(m.ttl == 600 and m.age >= 0 for m in msgs), "ttl and age")
    one = q.message(ids[0])
    check(one.id == ids[0] and one.body == {"n": 0}, "get by id: %r" % one)
    some = list(q.messages(*ids[1:3]))
    check([m.id for m in some] == ids[1:3], "get by ids: %s" % some)

    # Claim, query, update, delete with the claim id, release.
    claim = q.claim(ttl=300, grace=60, limit=3)
    claimed = list(claim)
    check(len(claimed) == 3 and claimed[0].id == ids[0], "claimed %s" % claimed)
    check(claim.id and claimed[0].claim_id == claim.id, "claim id %s / %s" % (claim.id, claimed[0].claim_id))
    check(claim.ttl == 300, "claim ttl %s" % claim.ttl)
    claim.update(ttl=600, grace=120)
    again = q.claim(id=claim.id)
    check(again.ttl == 600 and again.age >= 0, "claim after update: ttl %s" % again.ttl)
    check(len(list(again)) == 3, "claim still holds 3")
    try:
        req, trans = cli._request_and_transport()
        core.message_delete(trans, req, name, ids[0])
        check(False, "delete of a claimed message without its claim succeeded")
    except zerrors.ForbiddenError:
        pass
    claimed[0].delete()  # carries ?claim_id= from its href
    try:
        q.message(ids[0])
        check(False, "deleted message still there")
    except zerrors.ResourceNotFound:
        pass
    claim.delete()
    try:
        q.claim(id=claim.id).ttl  # queries the claim
        check(False, "released claim still there")
    except zerrors.ResourceNotFound:
        pass

    # Pop, stats, delete by ids, purge.
    popped = list(q.pop(count=2))
    check([m.id for m in popped] == ids[1:3], "popped %s" % [m.id for m in popped])
    check(popped[0].body == {"n": 1}, "popped body")
    stats = q.stats
    check(stats["messages"]["total"] == 7 and stats["messages"]["free"] == 7 and stats["messages"]["claimed"] == 0,
          "stats %s" % stats)
    check("oldest" in stats["messages"] and stats["messages"]["oldest"]["href"].endswith(ids[3]), "oldest %s" % stats)
    q.delete_messages(*ids[3:5])
    check(q.stats["messages"]["total"] == 5, "stats after delete by ids")
    q.purge(resource_types=["messages"])
    check(q.stats["messages"]["total"] == 0, "stats after purge")

    # Subscriptions: create, the same subscriber again (unconfirmed: the
    # same id), get, list, update, delete.
    sub = cli.subscription(name, subscriber="http://127.0.0.1:9/zc", ttl=3600, options={"k": "v"})
    check(sub.id and sub.subscriber == "http://127.0.0.1:9/zc" and sub.ttl == 3600 and sub.options == {"k": "v"},
          "subscription %r" % vars(sub))
    check(sub.confirmed is False and sub.age >= 0, "confirmed %s age %s" % (sub.confirmed, sub.age))
    same = cli.subscription(name, subscriber="http://127.0.0.1:9/zc", ttl=3600)
    check(same.id == sub.id, "same subscriber: %s != %s" % (same.id, sub.id))
    for i in range(11):
        cli.subscription(name, subscriber="http://127.0.0.1:9/zc%d" % i, ttl=600)
    subs = list(cli.subscriptions(name))
    check(len(subs) == 10, "a default page holds 10 subscriptions: %d" % len(subs))
    subs = list(cli.subscriptions(name, limit=20))
    check(len(subs) == 12 and len({x.id for x in subs}) == 12, "12 subscriptions listed: %d" % len(subs))
    sub.update({"ttl": 7200, "options": {"k": "w"}})
    got = cli.subscription(name, id=sub.id)
    check(got.ttl == 7200 and got.options == {"k": "w"}, "after update: %r" % vars(got))
    try:
        cli.subscription(name, subscriber="ftp://x/", ttl=60)
        check(False, "an ftp subscriber was accepted")
    except zerrors.MalformedRequest:
        pass
    sub.delete()
    try:
        cli.subscription(name, id=sub.id)
        check(False, "deleted subscription still there")
    except zerrors.ResourceNotFound:
        pass
    q.purge(resource_types=["subscriptions"])
    check(list(cli.subscriptions(name)) == [], "subscriptions after purge")

    # Delete the queue.
    q.delete()
    listed, _ = cli.queues()
    check(name not in [x.name for x in listed], "queue gone after delete")

    print("zaqarclient e2e: %d passed, 0 failed" % checks)


if __name__ == "__main__":
    main()
