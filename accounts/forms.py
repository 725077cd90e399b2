from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import BaseUserCreationForm


class SignupForm(BaseUserCreationForm):
    """E-mail, name and password; the e-mail address is also the username."""

    email = forms.EmailField(max_length=254)
    name = forms.CharField(max_length=150)

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
