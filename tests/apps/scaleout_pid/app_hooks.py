import os


def process_request(request):
    return {"page_pid": os.getpid()}
