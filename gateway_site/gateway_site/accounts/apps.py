from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "gateway_site.accounts"

    def ready(self):
        from django.contrib.auth.models import User
        from django.db.models.signals import m2m_changed, post_delete, post_save
        from rest_framework.authtoken.models import Token

        from gateway_site.accounts import tokens

        # A token deleted or a user changed anywhere (the Django admin included) stops counting at once in
        # this process; other processes forget within gateway.token_cache_s.
        def forget(update_fields=None, created=False, **_):
            if created or (update_fields and set(update_fields) <= {"last_login"}):
                return  # a new user has no token yet, and a login changes nothing a token check holds
            tokens.forget_tokens()

        post_delete.connect(forget, sender=Token, weak=False)
        post_save.connect(forget, sender=User, weak=False)
        m2m_changed.connect(forget, sender=User.groups.through, weak=False)
