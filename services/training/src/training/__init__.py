"""Gonghui training: courses, sessions, enrolment, attendance, certificates, competitions."""
