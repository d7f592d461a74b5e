# learner: "A dict of key -> response, guarded by a lock, shared by every request of the endpoint."
# misses: second_instance, in_flight, burst
# hint: another instance
import json
import threading

from helpers.idempotency import HttpRequest, HttpResponse

responses = {}
lock = threading.Lock()


def make_endpoint(charge):
    def serve(method, path, headers, body):
        request = HttpRequest(method, path, headers, body)
        key = request.header("Idempotency-Key")
        if key is None:
            return HttpResponse(400, {}, b"Idempotency-Key is missing")
        with lock:
            seen = responses.get(key)
            if seen is None:
                responses[key] = ("running", body)
        if seen is not None:
            state, payload = seen[0], seen[1]
            if (payload if state == "running" else seen[2]) != body:
                return HttpResponse(422, {}, b"the key was used for another request")
            if state == "running":
                return HttpResponse(409, {}, b"in progress")
            return HttpResponse(seen[1].status, seen[1].headers, seen[1].body)
        try:
            response = charge(request)
        except Exception:
            with lock:
                responses.pop(key, None)
            return HttpResponse(503, {}, b"try again")
        with lock:
            responses[key] = ("done", response, body)
        return response

    return serve


_ = json
