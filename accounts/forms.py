from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import BaseUserCreationForm


# Control characters, and the bidirectional overrides that can make a name
# display as other text. Format characters such as the zero-width joiner in
# emoji sequences stay allowed.
_HIDDEN_CHARACTERS = {chr(c) for c in range(0x20)} | {"\x7f"} | {
    chr(c) for c in (*range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))
}


def validate_visible_text(value: str) -> None:
    hidden = sorted({f"U+{ord(c):04X}" for c in value if c in _HIDDEN_CHARACTERS})
    if hidden:
        raise forms.ValidationError(
            "Remove the invisible control characters (%(codes)s) from this field.",
            code="control_characters",
            params={"codes": ", ".join(hidden)},
        )


class SignupForm(BaseUserCreationForm):
    """E-mail, name and password; the e-mail address is also the username."""

    # The address is stored as the username too, whose column allows 150.
    email = forms.EmailField(max_length=150)
    name = forms.CharField(max_length=150, validators=[validate_visible_text])

    class Meta:
        model = get_user_model()
        fields = ("email",)

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        if get_user_model().objects.filter(username__iexact=email).exists():
            raise forms.ValidationError(
                "An account with this e-mail address already exists; log in instead.",
                code="duplicate_email",
            )
        return email

    def _post_clean(self):
        # The password validators compare the password with the username,
        # so it is set before the parent class validates.
        email = self.cleaned_data.get("email")
        if email:
            self.instance.username = email.lower()
        super()._post_clean()

    def save(self, commit=True):
        user = super().save(commit=False)
        user.email = self.cleaned_data["email"]
        user.username = self.cleaned_data["email"].lower()
        user.first_name = self.cleaned_data["name"]
        if commit:
            user.save()
        return user
