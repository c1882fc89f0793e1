#!/usr/bin/python3
"""Drive a Zaqar v2 endpoint found through the Keystone catalog with
python-zaqarclient's keystone auth backend (Debian's python3-zaqarclient)
and check every answer.

    /usr/bin/python3 zaqarclient_keystone_e2e.py EXPECTED_URL QUEUE OTHER_USER OTHER_PROJECT

The OS_* environment (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD,
OS_PROJECT_NAME, OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME,
OS_REGION_NAME) names the first user. The client is given no URL: it asks
the catalog for service type messaging in OS_REGION_NAME, which must be
EXPECTED_URL. As that user: create QUEUE, post, claim, delete the claimed
messages with the claim id. As OTHER_USER of OTHER_PROJECT (same password
and domains): the queue is not listed, its messages are not there, and
naming the first user's project is refused. Exits 1 at the first mismatch,
2 on a usage error. Written for Cistern's server tests
(server/zaqarclient_keystone_test.go runs it).
"""

import os
import sys

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from zaqarclient.queues import client as zclient
from zaqarclient.transport import errors as zerrors

checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        print("FAIL: %s" % what)
        sys.exit(1)


def session(user, project):
    """A keystoneauth1 session for user in project: zaqarclient's keystone
    backend takes the token and the catalog from it, and the session keeps
    the token, so one password authentication serves every request."""
    auth = v3.Password(
        auth_url=os.environ["OS_AUTH_URL"], username=user,
        password=os.environ["OS_PASSWORD"], project_name=project,
        user_domain_name=os.environ["OS_USER_DOMAIN_NAME"],
        project_domain_name=os.environ["OS_PROJECT_DOMAIN_NAME"])
    return ks_session.Session(auth=auth)


def client(sess, **extra):
    # url=None: the keystone backend looks the endpoint up in the catalog.
    opts = {"region_name": os.environ["OS_REGION_NAME"], "endpoint_type": "public"}
    opts.update(extra)
    conf = {"auth_opts": {"backend": "keystone", "options": opts}}
    return zclient.Client(None, version=2, conf=conf, session=sess)


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        sys.exit(2)
    want_url, name, other_user, other_project = sys.argv[1:]
    region = os.environ["OS_REGION_NAME"]

    alice = session(os.environ["OS_USERNAME"], os.environ["OS_PROJECT_NAME"])
    found = alice.get_endpoint(service_type="messaging", interface="public", region_name=region)
    check(found and found.rstrip("/") == want_url.rstrip("/"),
          "catalog endpoint %s, want %s" % (found, want_url))
    cli = client(alice)

    q = cli.queue(name, force_create=True)
    listed, _ = cli.queues()
    check(name in [x.name for x in listed], "queue %s listed" % name)
    posted = q.post([{"body": {"n": i}, "ttl": 300} for i in range(3)])
    check(len(posted["resources"]) == 3, "3 resources: %s" % posted)
    ids = [r.rsplit("/", 1)[1] for r in posted["resources"]]
    msgs = list(q.messages(echo=True))
    check([m.id for m in msgs] == ids, "listing %s != posted %s" % ([m.id for m in msgs], ids))

    claim = q.claim(ttl=300, grace=60, limit=5)
    claimed = list(claim)
    check(sorted(m.id for m in claimed) == sorted(ids), "claimed %s" % [m.id for m in claimed])
    check(claim.id and all(m.claim_id == claim.id for m in claimed), "claim id on every message")
    for m in claimed:
        m.delete()  # sends the claim id
    left = list(q.messages(echo=True, include_claimed=True))
    check(left == [], "messages left after deleting the claimed ones: %s" % left)
    q.post([{"body": "for alice only", "ttl": 300}])

    # The other project sees nothing of it, and naming the first user's
    # project (zaqarclient's project_id option sends X-Project-Id) is refused.
    bob = session(other_user, other_project)
    bcli = client(bob)
    listed, _ = bcli.queues()
    check(name not in [x.name for x in listed], "%s lists %s" % (other_user, name))
    theirs = list(bcli.queue(name, auto_create=False).messages(echo=True))
    check(theirs == [], "%s reads %s's messages: %s" % (other_user, name, theirs))
    try:
        intruder = client(bob, project_id=alice.get_project_id())
        list(intruder.queue(name, auto_create=False).messages(echo=True))
        check(False, "%s naming the other project was let through" % other_user)
    except zerrors.ForbiddenError:
        pass
    check(len(list(q.messages(echo=True))) == 1, "alice's message intact")

    q.delete()
    print("ok: %d checks" % checks)


if __name__ == "__main__":
    main()
