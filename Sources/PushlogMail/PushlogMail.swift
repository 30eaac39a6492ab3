// The email side of Pushlog: MIME messages, the SMTP mailer over Curl, and the digest templates.
