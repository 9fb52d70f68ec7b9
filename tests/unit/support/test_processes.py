"""The test helpers clean up after themselves."""

from __future__ import annotations

import gc

from tests.support.processes import ServiceProcess


def test_a_service_process_removes_its_log_folder_when_it_is_gone() -> None:
    service = ServiceProcess("products.ai_chatbot.main:app")
    folder = service.log_path.parent
    service.log_path.write_text("started\n")
    assert folder.is_dir()
    del service
    gc.collect()
    assert not folder.exists()
