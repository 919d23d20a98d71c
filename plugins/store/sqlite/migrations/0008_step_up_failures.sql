-- Wrong step-up answers in a row, per profile: security codes,
-- authenticator codes and challenge answers over every code and login. Only
-- a passed step-up and an unlock reset the count; profiles from before the
-- upgrade start at none.

ALTER TABLE users ADD COLUMN step_up_failures INTEGER NOT NULL DEFAULT 0;
