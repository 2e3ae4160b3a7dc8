// An Express app, deployed as it would be to Heroku: no Procfile, so the nodejs buildpack's
// default `web: npm start` runs it.
const express = require("express");

const GREETING = "Hello from Express";
const app = express();

app.get("/", (req, res) => {
  res.type("text").send(`${GREETING} on ${process.env.DYNO} (release ${process.env.HEROKU_RELEASE_VERSION})\n`);
});

app.get("/health", (req, res) => {
  res.json({ ok: true, dyno: process.env.DYNO, webConcurrency: process.env.WEB_CONCURRENCY });
});

const port = process.env.PORT || 3000;
app.listen(port, () => console.log(`listening on port ${port}`));
