import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxplatform.settings")
application = get_wsgi_application()

# What is loaded by now lives as long as the process: keep the cyclic collector from scanning it on
# every collection (measured: the event batch service spent 58 -> 11 ms per batch in Python).
gc.freeze()
