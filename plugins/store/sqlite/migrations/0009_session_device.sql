-- A session names the registered device its login was made from, so that
-- removing the device can end the sessions made from it. Sessions from
-- before the upgrade, and those of devices not registered, name none ('').

ALTER TABLE sessions ADD COLUMN device_id TEXT NOT NULL DEFAULT '';
