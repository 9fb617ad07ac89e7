"""What several of the gateway's test modules share (fixtures are in conftest.py)."""

import base64
import io

import numpy as np
from PIL import Image
from rest_framework.authtoken.models import Token

PASSWORD = "a-long-test-password"
DIGIT = {"pixels": [[0] * 28 for _ in range(28)]}


def canvas_data_url() -> str:
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[60:220, 130:150, 3] = 255
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def token_of(users, username: str) -> dict:
    return {"Authorization": f"Token {Token.objects.get_or_create(user=users[username])[0].key}"}
