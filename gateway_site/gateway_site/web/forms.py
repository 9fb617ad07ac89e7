"""The pages' forms: each field checked as the API checks it (whole numbers in ASCII digits within bounds, known
choices), and one sentence per problem for the page to show."""

from __future__ import annotations

from django import forms

from gateway_site.accounts.roles import ROLE_TITLES
from kit.errors import AppError
from kit.validation import MAX_ID, ascii_int
from kit.webhooks import EVENT_TYPES


class WholeNumberField(forms.Field):
    """A whole number in ASCII digits from `minimum` to `maximum` (int() would also take '²' and '٣')."""

    def __init__(self, *, minimum: int = 1, maximum: int = MAX_ID, **kwargs):
        super().__init__(**kwargs)
        self.minimum, self.maximum = minimum, maximum

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return ascii_int(value, field=self.label, minimum=self.minimum, maximum=self.maximum)
        except AppError as exc:
            raise forms.ValidationError(exc.message) from None


def problem(form: forms.Form) -> str:
    """The form's problems, one sentence each, for the page to show."""
    return " ".join(error for errors in form.errors.values() for error in errors)


class PromoteForm(forms.Form):
    version_id = WholeNumberField(label="Version")
    alias = forms.ChoiceField(choices=[("production", "production"), ("candidate", "candidate")], required=False)
    reason = forms.CharField(max_length=2000, strip=True,
                             error_messages={"required": "Say why: a reason is required for every alias move."})
    override = forms.BooleanField(required=False)


class CanaryForm(forms.Form):
    percent = WholeNumberField(label="Canary share (%)", minimum=0, maximum=50)
    reason = forms.CharField(max_length=2000, strip=True, required=False)


class RoleForm(forms.Form):
    user_id = WholeNumberField(label="User")
    role = forms.ChoiceField(choices=list(ROLE_TITLES.items()),
                             error_messages={"invalid_choice": "That role does not exist."})


class CollectForm(forms.Form):
    source = forms.CharField(max_length=100)
    split = forms.CharField(max_length=10, required=False)
    batch_size = WholeNumberField(label="Batch size", maximum=100_000, required=False)
    max_samples = WholeNumberField(label="At most", required=False)


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=[("accept", "accept"), ("reject", "reject")],
                                 error_messages={"invalid_choice": "decision must be accept or reject."})


class CorrectionForm(forms.Form):
    label = forms.ChoiceField(choices=[(str(d), str(d)) for d in range(10)],
                              error_messages={"required": "Pick a digit from 0 to 9.",
                                              "invalid_choice": "Pick a digit from 0 to 9."})


class SendToReviewForm(forms.Form):
    label = forms.ChoiceField(choices=[(str(d), str(d)) for d in range(10)],
                              error_messages={"required": "Pick the label to send them with (0-9).",
                                              "invalid_choice": "Pick the label to send them with (0-9)."})
    image = forms.MultipleChoiceField(error_messages={"required": "Tick at least one digit to send."})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # the images are the cell's own, sent back as they were given (storage checks each is 784 bytes)
        self.fields["image"].valid_value = lambda value: isinstance(value, str) and 0 < len(value) <= 2000


class WebhookForm(forms.Form):
    url = forms.CharField(max_length=500, strip=True, label="HTTPS endpoint")
    events = forms.MultipleChoiceField(choices=[(event, event) for event in EVENT_TYPES],
                                       error_messages={"required": "Choose at least one event."})


class WebhookDeleteForm(forms.Form):
    webhook_id = WholeNumberField(label="Webhook")
