// Package sessions holds the README's recipes for ending a user's other
// sessions after a password reset ([reset.Config.EndSessions]) with two
// common session libraries, github.com/alexedwards/scs and
// github.com/gorilla/sessions. Its tests build each recipe against the
// real library and prove it: two signed-in devices are signed out by a
// completed reset, and stay signed in when the person keeps their
// sessions.
package sessions
