"""Realistic Telegram updates, built with python-telegram-bot's objects and serialised."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import orjson
from telegram import (
    CallbackQuery,
    Chat,
    ChatMemberBanned,
    ChatMemberMember,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Sticker,
    Update,
    User,
)

_ids = itertools.count(1000)
BOT_USER = User(id=7000000001, first_name="Loja", is_bot=True, username="loja_bot")


def _user(user_id: int) -> User:
    return User(id=user_id, first_name="Ana", is_bot=False, username=f"ana{user_id}",
                language_code="pt-br")


def _chat(chat_id: int) -> Chat:
    return Chat(id=chat_id, type=Chat.PRIVATE, first_name="Ana", username=f"ana{chat_id}")


def _dump(update: Update) -> dict[str, Any]:
    return orjson.loads(update.to_json())


def text_message(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    entities = []
    if text.startswith("/"):
        entities = [MessageEntity(type=MessageEntity.BOT_COMMAND, offset=0,
                                  length=len(text.split()[0]))]
    message = Message(message_id=next(_ids), date=datetime.now(UTC), chat=_chat(user_id),
                      from_user=_user(user_id), text=text, entities=entities)
    return _dump(Update(update_id=update_id, message=message))


def start(update_id: int, user_id: int, payload: str | None = None) -> dict[str, Any]:
    return text_message(update_id, user_id, "/start" + (f" {payload}" if payload else ""))


def callback(update_id: int, user_id: int, data: str, offer_message_id: int = 42) -> dict[str, Any]:
    offer = Message(
        message_id=offer_message_id, date=datetime.now(UTC), chat=_chat(user_id),
        from_user=BOT_USER, text="Escolha sua oferta:",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Gerar PIX",
                                                                 callback_data=data)]]),
    )
    query = CallbackQuery(id=str(next(_ids)) + "4455", from_user=_user(user_id),
                          chat_instance="-5523", data=data, message=offer)
    return _dump(Update(update_id=update_id, callback_query=query))


def sticker(update_id: int, user_id: int) -> dict[str, Any]:
    st = Sticker(file_id="CAACAgIAAxkBAAIB", file_unique_id="AgADcQ", width=512, height=512,
                 is_animated=False, is_video=False, type=Sticker.REGULAR, emoji="👍")
    message = Message(message_id=next(_ids), date=datetime.now(UTC), chat=_chat(user_id),
                      from_user=_user(user_id), sticker=st)
    return _dump(Update(update_id=update_id, message=message))


def edited(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    message = Message(message_id=next(_ids), date=datetime.now(UTC), chat=_chat(user_id),
                      from_user=_user(user_id), text=text, edit_date=datetime.now(UTC))
    return _dump(Update(update_id=update_id, edited_message=message))


def channel_post(update_id: int, channel_id: int = -1001234567890) -> dict[str, Any]:
    chat = Chat(id=channel_id, type=Chat.CHANNEL, title="Canal")
    message = Message(message_id=next(_ids), date=datetime.now(UTC), chat=chat, text="novidade")
    return _dump(Update(update_id=update_id, channel_post=message))


def my_chat_member(update_id: int, user_id: int, blocked: bool) -> dict[str, Any]:
    now = datetime.now(UTC)
    old = ChatMemberMember(user=BOT_USER)
    new = ChatMemberBanned(user=BOT_USER, until_date=now) if blocked \
        else ChatMemberMember(user=BOT_USER)
    change = ChatMemberUpdated(chat=_chat(user_id), from_user=_user(user_id), date=now,
                               old_chat_member=new if not blocked else old,
                               new_chat_member=new)
    return _dump(Update(update_id=update_id, my_chat_member=change))
