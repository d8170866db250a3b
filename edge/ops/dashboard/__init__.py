"""`fer-edge dashboard`: a live web page for every device under an MQTT prefix (docs/dashboard.md).

model.py   what is known about the fleet, from MQTT messages, with bounded memory
feed.py    the paho subscriber that feeds the model and the pages
server.py  the HTTP server: static page + server-sent events (standard library)
app.py     the three put together; command.py the command line
static/    the page: plain JavaScript, no dependency, nothing loaded from elsewhere
"""
