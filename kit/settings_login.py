"""Settings of a service with a login (the gateway, storage's admin), as they are."""

# django-axes, for a service with a login: `login_failure_limit` failures for one username from one address lock
# that pair for `login_lockout_minutes` (each settings module reads those two); a good login resets the count.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
