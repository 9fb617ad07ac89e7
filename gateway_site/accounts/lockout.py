"""What a locked-out login gets: a JSON 429 from the API, a page for the browser."""

from django.shortcuts import render

from kit.errors import error_response


def locked_out(request, credentials=None, *args, **kwargs):
    message = "Too many failed logins: this account is locked here for a while. Try again later."
    if request.path.startswith("/api/"):
        response = error_response("locked_out", message, status=429)
    else:
        response = render(request, "web/error.html", {"status": 429, "message": message}, status=429)
    response["Retry-After"] = "900"
    return response
