"""Rater URLs, all under ``/r/<invitation token>/``; trial images are named only by opaque trial tokens."""

from __future__ import annotations

from django.urls import path

from ratingstudy.studies import views

app_name = "studies"
urlpatterns = [
    path("<str:token>/", views.invitation, name="invitation"),
    path("<str:token>/trial/", views.trial, name="trial"),
    path("<str:token>/t/<str:trial_token>/answer", views.answer, name="answer"),
    path("<str:token>/t/<str:trial_token>/feedback", views.feedback, name="feedback"),
    path("<str:token>/i/<str:trial_token>", views.image, name="image"),
    path("<str:token>/i/<str:trial_token>/r", views.image_right, name="image_right"),
    path("<str:token>/done/", views.complete, name="complete"),
    path("<str:token>/consent/", views.consent, name="consent"),
    path("<str:token>/screen/", views.screen, name="screen"),
    path("<str:token>/withdraw/", views.withdraw, name="withdraw"),
]
