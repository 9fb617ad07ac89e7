"""What a locked-out login gets: a JSON 429 from the API, a page for the browser."""

from web.errors import error_answer


def locked_out(request, credentials=None, *args, **kwargs):
    message = "Too many failed logins: this account is locked here for a while. Try again later."
    response = error_answer(request, status=429, code="locked_out", message=message)
    response["Retry-After"] = "900"
    return response
