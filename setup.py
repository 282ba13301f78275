#!/usr/bin/env python
from setuptools import find_namespace_packages, setup

setup(
    name="tap-zendesk-chat",
    version="2.0.0",
    description="Singer tap for the Zendesk Chat REST API: every stream, exact incremental chats",
    author="tap-zendesk-chat developers",
    license="AGPL-3.0",
    python_requires=">=3.11",
    classifiers=["Programming Language :: Python :: 3 :: Only"],
    py_modules=[],
    install_requires=[
        "singer-python==6.8.0",
        "requests==2.34.2",
        "backoff==2.2.1",
        "pendulum==3.3.0",
        "orjson==3.13.0",
        "msgspec==0.22.0",
    ],
    extras_require={
        "test": [
            "pytest==9.2.0",
            "hypothesis==6.170.15",
            "jsonschema==2.6.0",
            "fastjsonschema==2.22.3",
        ],
    },
    entry_points={"console_scripts": ["tap-zendesk-chat=tap_zendesk_chat:main"]},
    # The schema folders are data, shipped as namespace packages: listed here, setuptools installs them
    # without its "Package would be ignored" warnings.
    packages=find_namespace_packages(include=["tap_zendesk_chat", "tap_zendesk_chat.*"]),
    package_data={"tap_zendesk_chat.schemas": ["*.json"], "tap_zendesk_chat.schemas.shared": ["*.json"]},
    license_files=["LICENSE"],
)
