"""The sans-IO SMTP/LMTP client: replies, EHLO extensions, commands, content, connection.

Nothing here opens sockets, reads clocks or starts threads; drivers in
:mod:`pyfix_smtp.transport` move the bytes. The pieces:

* :class:`ClientConnection` (:mod:`.connection`) - the session state machine
  with Postfix's PIPELINING scheduler; :mod:`.events` - what it reports;
* :class:`Envelope`, :class:`Recipient` ... (:mod:`.envelope`) - typed inputs;
* :mod:`.commands` - MAIL/RCPT/XFORWARD/AUTH command builders;
* :class:`ReplyParser` (:mod:`.replies`) and :func:`parse_ehlo`
  (:mod:`.extensions`) - server replies;
* :func:`encode_data` / :func:`encode_bdat` (:mod:`.content`) - the
  streaming message encoder;
* :mod:`.failures` - Postfix's wording for protocol failures.
"""

from __future__ import annotations

from pyfix_smtp.protocol.commands import (
    auth_command,
    auth_response,
    envelope_failure,
    hello_command,
    mail_command,
    mime_downgrade_applies,
    rcpt_command,
    smtputf8_in_use,
    xforward_commands,
)
from pyfix_smtp.protocol.connection import (
    PIPELINING_BUFSIZE,
    ClientConfig,
    ClientConnection,
    ClientOptions,
    State,
)
from pyfix_smtp.protocol.content import (
    DEFAULT_BDAT_CHUNK_SIZE,
    DEFAULT_READ_SIZE,
    END_OF_DATA,
    BdatChunk,
    Content,
    ContentConfig,
    ContentEncoder,
    EncoderOptions,
    Framing,
    SupportsRead,
    declares_8bit,
    downgrade_needed,
    encode_bdat,
    encode_data,
    iter_chunks,
)
from pyfix_smtp.protocol.envelope import (
    BodyType,
    Envelope,
    Notify,
    OriginalRecipient,
    Recipient,
    Ret,
    Xforward,
)
from pyfix_smtp.protocol.events import (
    NEED_DATA,
    AuthChallenge,
    AuthResult,
    Closed,
    DataReady,
    Event,
    Greeting,
    HelloRejected,
    LmtpRecipientResult,
    MailResult,
    MessageResult,
    NeedData,
    ProtocolWarning,
    RecipientOutcome,
    RecipientResult,
    RsetResult,
    Stage,
    StartTlsReady,
    StartTlsRejected,
    TransactionResult,
    XforwardResult,
)
from pyfix_smtp.protocol.extensions import (
    EhloDiscard,
    Extensions,
    greeting_announces_esmtp,
    is_pix_greeting,
    parse_ehlo,
)
from pyfix_smtp.protocol.failures import (
    is_protocol_error_code,
    lost_failure,
    refused_failure,
    reply_failure,
)
from pyfix_smtp.protocol.replies import DEFAULT_LINE_LENGTH_LIMIT, ReplyParser

__all__ = [
    "DEFAULT_BDAT_CHUNK_SIZE",
    "DEFAULT_LINE_LENGTH_LIMIT",
    "DEFAULT_READ_SIZE",
    "END_OF_DATA",
    "NEED_DATA",
    "PIPELINING_BUFSIZE",
    "AuthChallenge",
    "AuthResult",
    "BdatChunk",
    "BodyType",
    "ClientConfig",
    "ClientConnection",
    "ClientOptions",
    "Closed",
    "Content",
    "ContentConfig",
    "ContentEncoder",
    "DataReady",
    "EhloDiscard",
    "EncoderOptions",
    "Envelope",
    "Event",
    "Extensions",
    "Framing",
    "Greeting",
    "HelloRejected",
    "LmtpRecipientResult",
    "MailResult",
    "MessageResult",
    "NeedData",
    "Notify",
    "OriginalRecipient",
    "ProtocolWarning",
    "Recipient",
    "RecipientOutcome",
    "RecipientResult",
    "ReplyParser",
    "Ret",
    "RsetResult",
    "Stage",
    "StartTlsReady",
    "StartTlsRejected",
    "State",
    "SupportsRead",
    "TransactionResult",
    "Xforward",
    "XforwardResult",
    "auth_command",
    "auth_response",
    "declares_8bit",
    "downgrade_needed",
    "encode_bdat",
    "encode_data",
    "envelope_failure",
    "greeting_announces_esmtp",
    "hello_command",
    "is_pix_greeting",
    "is_protocol_error_code",
    "iter_chunks",
    "lost_failure",
    "mail_command",
    "mime_downgrade_applies",
    "parse_ehlo",
    "rcpt_command",
    "refused_failure",
    "reply_failure",
    "smtputf8_in_use",
    "xforward_commands",
]
