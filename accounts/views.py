import logging

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db import transaction
from django.urls import reverse_lazy
from django.views.generic import FormView, TemplateView

from accounts.forms import SignupForm

logger = logging.getLogger(__name__)


class SignupView(FormView):
    template_name = "accounts/signup.html"
    form_class = SignupForm
    success_url = reverse_lazy("accounts:login")

    def form_valid(self, form):
        # One transaction for the user row and its outbox event: both are
        # committed, or neither is.
        with transaction.atomic():
            user = form.save()
        logger.info("user signed up", extra={"user_id": user.pk})
        messages.success(self.request, "Your account is ready. Please log in.")
        return super().form_valid(form)


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"

    def form_valid(self, form):
        # last_login and the user.logged_in event commit together.
        with transaction.atomic():
            return super().form_valid(form)


class WelcomeView(LoginRequiredMixin, TemplateView):
    template_name = "accounts/welcome.html"
