#!/usr/bin/python3
"""Drive Zaqar's websocket transport with python-zaqarclient's websocket
transport (Debian's python3-zaqarclient with python3-websocket).

    /usr/bin/python3 zaqarclient_ws_e2e.py ws://127.0.0.1:9000 [project]

zaqarclient's high-level client does not work over websockets (its
requests carry the queue name as a URL parameter, which the websocket
transport drops, as its own documentation says), so this uses the transport
directly, as that documentation shows: authenticate (sent by the transport
on connect), queue create/get/list/stats, post, list, get, get many, claim,
claim get/update, delete with the claim id, claim delete, pop, a socket
subscription with a pushed message, a webhook subscription (create, get,
list, delete), errors (404, 400 as zaqarclient's exceptions), purge and
queue delete. Exits 1 at the first mismatch, 2 on a usage error.
"""

import json
import sys
import uuid

from zaqarclient import transport
from zaqarclient.transport import errors as zerrors
from zaqarclient.transport import request

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
    endpoint = sys.argv[1]
    project = sys.argv[2] if len(sys.argv) == 3 else "zaqarclient-ws"
    conf = {"auth_opts": {"backend": "noauth",
                          "options": {"os_auth_token": "none", "os_project_id": project}}}
    name = "ws-" + uuid.uuid4().hex[:12]

    with transport.get_transport_for(endpoint, options=conf) as ws:
        def send(action, **body):
            req = request.Request(endpoint, action, content=json.dumps(body))
            resp = ws.send(req)
            return resp.status_code, json.loads(resp.content)

        st, body = send("queue_create", queue_name=name, metadata={"k": "v"})
        check(st == 201 and body == "Queue %s created." % name, "queue_create: %s %s" % (st, body))
        st, body = send("queue_get", queue_name=name)
        check(st == 200 and body.get("k") == "v", "queue_get: %s %s" % (st, body))
        st, body = send("queue_list")
        check(st == 200 and name in [q["name"] for q in body["queues"]], "queue_list: %s" % body)

        st, body = send("message_post", queue_name=name,
                        messages=[{"body": {"n": i}, "ttl": 300} for i in range(3)])
        check(st == 201 and len(body["message_ids"]) == 3, "message_post: %s %s" % (st, body))
        ids = body["message_ids"]
        st, body = send("message_list", queue_name=name, echo=True)
        check(st == 200 and [m["id"] for m in body["messages"]] == ids, "message_list: %s" % body)
        st, body = send("message_get", queue_name=name, message_id=ids[0])
        check(st == 200 and body["messages"]["body"] == {"n": 0}, "message_get: %s" % body)
        st, body = send("message_get_many", queue_name=name, message_ids=ids[:2])
        check(st == 200 and len(body["messages"]) == 2, "message_get_many: %s" % body)
        st, body = send("queue_get_stats", queue_name=name)
        check(st == 200 and body["messages"]["free"] == 3, "queue_get_stats: %s" % body)

        st, body = send("claim_create", queue_name=name, ttl=60, grace=60, limit=1)
        check(st == 201 and body["messages"][0]["claim_id"] == body["claim_id"], "claim_create: %s" % body)
        cid, mid = body["claim_id"], body["messages"][0]["id"]
        st, body = send("claim_get", queue_name=name, claim_id=cid)
        check(st == 200 and body["ttl"] == 60, "claim_get: %s" % body)
        st, body = send("claim_update", queue_name=name, claim_id=cid, ttl=120)
        check(st == 204, "claim_update: %s %s" % (st, body))
        try:
            send("message_delete", queue_name=name, message_id=mid)
            check(False, "deleting a claimed message without its claim id succeeded")
        except zerrors.ForbiddenError as e:
            check("claimed" in str(e), "403 text: %s" % e)
        st, _ = send("message_delete", queue_name=name, message_id=mid, claim_id=cid)
        check(st == 204, "message_delete with the claim: %s" % st)
        st, _ = send("claim_delete", queue_name=name, claim_id=cid)
        check(st == 204, "claim_delete: %s" % st)
        st, body = send("message_delete_many", queue_name=name, pop=1)
        check(st == 200 and len(body["messages"]) == 1, "pop: %s" % body)

        # The socket subscribes itself; a post is pushed to it.
        st, body = send("subscription_create", queue_name=name, ttl=3600)
        check(st == 201 and body["subscription_id"], "socket subscription_create: %s %s" % (st, body))
        sock_sub = body["subscription_id"]
        ws._ws.send(json.dumps({"action": "message_post",
                                "headers": {"Client-ID": str(uuid.uuid4()), "X-Project-ID": project},
                                "body": {"queue_name": name, "messages": [{"body": "pushed", "ttl": 300}]}}))
        got_answer, got_push = False, False
        while not (got_answer and got_push):
            frame = ws.recv()
            if "request" in frame:
                check(frame["headers"]["status"] == 201, "post answer: %s" % frame)
                got_answer = True
            else:
                check(frame.get("body") == "pushed" and frame.get("queue_name") == name
                      and frame.get("Message_Type") == "Notification", "pushed: %s" % frame)
                got_push = True
        st, _ = send("subscription_delete", queue_name=name, subscription_id=sock_sub)
        check(st == 204, "socket subscription_delete: %s" % st)

        st, body = send("subscription_create", queue_name=name, subscriber="http://example.com/hook", ttl=3600)
        check(st == 201, "subscription_create: %s %s" % (st, body))
        sid = body["subscription_id"]
        st, body = send("subscription_get", queue_name=name, subscription_id=sid)
        check(st == 200 and body["subscriber"] == "http://example.com/hook", "subscription_get: %s" % body)
        st, body = send("subscription_list", queue_name=name)
        check(st == 200 and [s["id"] for s in body["subscriptions"]] == [sid], "subscription_list: %s" % body)
        st, _ = send("subscription_delete", queue_name=name, subscription_id=sid)
        check(st == 204, "subscription_delete: %s" % st)

        try:
            send("message_get", queue_name=name, message_id="0" * 24)
            check(False, "an unknown message was found")
        except zerrors.ResourceNotFound:
            check(True, "404")
        try:
            send("queue_create", queue_name="bad name")
            check(False, "a bad queue name was taken")
        except zerrors.MalformedRequest as e:
            check("queue name" in str(e), "400 text: %s" % e)

        st, _ = send("queue_purge", queue_name=name)
        check(st == 204, "queue_purge: %s" % st)
        st, _ = send("queue_delete", queue_name=name)
        check(st == 204, "queue_delete: %s" % st)
    print("ok: %d checks" % checks)


if __name__ == "__main__":
    main()
