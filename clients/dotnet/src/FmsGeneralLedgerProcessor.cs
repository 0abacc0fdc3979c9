using System;
using System.Diagnostics;
using System.Net;
using System.Threading;
using System.Xml;
using System.Xml.XPath;

namespace CSFMSEJournalInterface
{
    /// <summary>
    /// FMS 6's E-Journal interface, with FMS's own methods and signatures, served by
    /// fng-gateway: a payment system reads its banks, posts its journals and audit notes as it
    /// did with FMS, and the gateway carries them to FNG.
    /// </summary>
    /// <remarks>
    /// <para>Each call is one SOAP 1.1 request to <c>{server}/soap/ejournal</c> over HTTP(S).
    /// A call whose answer is lost is sent again, byte for byte, with the same request id:
    /// the gateway's ledger posts a journal at most once however often it arrives, and settles
    /// a submission whose outcome it does not know before it posts anything again. So callers
    /// need no retry logic of their own: a call returns the result, or throws
    /// <see cref="GatewayException"/> once sending again would not help (or, for
    /// <see cref="PostAuditMessage"/>, would risk a second note).</para>
    /// <para>An instance may be shared by several threads once its properties are set.</para>
    /// </remarks>
    public class FmsGeneralLedgerProcessor
    {
        /// <summary>
        /// Faults after which GetBanks and PostJournals are sent again, besides every fault
        /// whose SOAP fault code blames the server (<c>soap:Server</c>: INTERNAL_ERROR,
        /// GATEWAY_ERROR…), which the gateway's ledger makes as safe to resend.
        /// </summary>
        private static readonly string[] ResendableFaults =
        {
            "OUTCOME_UNKNOWN",
            "SUBMISSION_IN_PROGRESS",
            "RECONCILIATION_FAILED",
            "UPSTREAM_ERROR",
            "UPSTREAM_TIMEOUT",
            "TOKEN_UNAVAILABLE",
            "STORE_UNAVAILABLE",
        };

        /// <summary>
        /// Faults the gateway can only send before it calls FNG, after which an audit note may
        /// be sent again. Not STORE_UNAVAILABLE: the gateway's store may fail after FNG
        /// accepted the note (when the gateway records the call), and a note sent again would
        /// be recorded twice.
        /// </summary>
        private static readonly string[] UndeliveredFaults =
        {
            "TOKEN_UNAVAILABLE",
        };

        /// <summary>
        /// Faults that are the server's but final: FNG refused the gateway's database keys or
        /// token, so nothing was posted or recorded, and sending again cannot help until the
        /// gateway's operator fixes them.
        /// </summary>
        private static readonly string[] RefusedFaults =
        {
            "UPSTREAM_REFUSED",
        };

        /// <summary>Faults that say the submission reached the gateway's ledger, whoever's fault they are.</summary>
        private static readonly string[] InFlightFaults =
        {
            "OUTCOME_UNKNOWN",
            "SUBMISSION_IN_PROGRESS",
            "RECONCILIATION_FAILED",
        };

        /// <summary>The code of a journal whose outcome no answer settled.</summary>
        private const string OutcomeUnknown = "OUTCOME_UNKNOWN";

        /// <summary>What to do with a journal whose outcome is unknown.</summary>
        private const string ResendJournal =
            "send the same submission again later (the same submissionID, the journal unchanged): "
            + "the gateway posts it at most once";

        /// <summary>The least time an attempt is given: none is started with less left.</summary>
        private static readonly TimeSpan MinimumAttempt = TimeSpan.FromSeconds(1);

        private static readonly Random Jitter = new Random();

        private readonly Uri _service;
        /// <summary>Whether https was implied (a host name alone), not written out.</summary>
        private readonly bool _httpsImplied;
        private readonly string _database;
        private readonly string _username;
        private readonly string _password;

        private TimeSpan _timeout = TimeSpan.FromSeconds(100);
        private TimeSpan _callTimeout = TimeSpan.FromMinutes(5);
        private int _connectionLimit = 16;
        private int _maxAttempts = 8;
        private TimeSpan _retryDelay = TimeSpan.FromSeconds(1);
        private TimeSpan _maxRetryDelay = TimeSpan.FromSeconds(30);
        private IWebProxy _proxy = new SystemProxy();

        /// <summary>
        /// Creates a processor for one school database, as FMS's constructor did; nothing is
        /// sent until a method is called.
        /// </summary>
        /// <param name="server">
        /// The gateway's address, <c>https://host[:port][/prefix]</c>, where FMS took its SQL
        /// Server. A host name alone (<c>gateway.example.org</c>,
        /// <c>gateway.example.org:8443</c>) means https; plain http only when written out
        /// (<c>http://…</c>, for a test sandbox). The service's own URL
        /// (<c>…/soap/ejournal</c>, even with <c>?wsdl</c>) is accepted too.
        /// </param>
        /// <param name="database">
        /// The partner key (a GUID) of the school's FNG database, where FMS took the name of
        /// its database.
        /// </param>
        /// <param name="username">The gateway integration account's user name, where FMS took an FMS user.</param>
        /// <param name="password">That account's password.</param>
        /// <exception cref="ArgumentNullException">An argument is null.</exception>
        /// <exception cref="ArgumentException">
        /// <paramref name="server"/> is not an http or https address (for instance an FMS SQL
        /// Server instance name such as <c>SQL01\FMS</c>).
        /// </exception>
        public FmsGeneralLedgerProcessor(string server, string database, string username, string password)
        {
            _service = ServiceAddress.Parse(server);
            _httpsImplied = ServiceAddress.HttpsImplied(server);
            if (database == null)
            {
                throw new ArgumentNullException("database");
            }
            if (username == null)
            {
                throw new ArgumentNullException("username");
            }
            if (password == null)
            {
                throw new ArgumentNullException("password");
            }
            _database = database;
            _username = username;
            _password = password;
        }

        /// <summary>
        /// How long one attempt may take: to connect and get the answer's headers, and for
        /// each read or write once connected (<see cref="HttpWebRequest.Timeout"/> and
        /// <see cref="HttpWebRequest.ReadWriteTimeout"/>), never beyond what is left of
        /// <see cref="CallTimeout"/>. Default 100 seconds, .NET's own.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">Not more than zero, or above <see cref="int.MaxValue"/> milliseconds.</exception>
        public TimeSpan Timeout
        {
            get { return _timeout; }
            set
            {
                CheckTimeout(value, "Timeout");
                _timeout = value;
            }
        }

        /// <summary>
        /// How long one call may take in all, its attempts and the waits between them: an
        /// attempt still under way when it runs out is cut off, and no attempt is started with
        /// less than a second (or <see cref="Timeout"/>, if shorter) left. Default 5 minutes,
        /// longer than the retries' waits (about 90 to 115 seconds with the defaults) and the
        /// gateway's 90-second ledger lease together.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">Not more than zero, or above <see cref="int.MaxValue"/> milliseconds.</exception>
        public TimeSpan CallTimeout
        {
            get { return _callTimeout; }
            set
            {
                CheckTimeout(value, "CallTimeout");
                _callTimeout = value;
            }
        }

        /// <summary>
        /// How many times a call may be sent in all, the first time included, within
        /// <see cref="CallTimeout"/>. Default 8, which with the default delays waits 91 to 114
        /// seconds in all between attempts: longer than the gateway takes to settle a
        /// submission a failed gateway process left in flight.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">Less than 1.</exception>
        public int MaxAttempts
        {
            get { return _maxAttempts; }
            set
            {
                if (value < 1)
                {
                    throw new ArgumentOutOfRangeException("value", value, "MaxAttempts must be at least 1.");
                }
                _maxAttempts = value;
            }
        }

        /// <summary>
        /// The wait before the second attempt; each later wait doubles, up to
        /// <see cref="MaxRetryDelay"/>, and each is lengthened by up to a quarter at random so
        /// that many clients do not retry in step. Default 1 second.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">Negative, or more than a day.</exception>
        public TimeSpan RetryDelay
        {
            get { return _retryDelay; }
            set
            {
                CheckDelay(value, "RetryDelay");
                _retryDelay = value;
            }
        }

        /// <summary>
        /// The longest wait between two attempts, before the random part is added. Default 30
        /// seconds.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">Negative, or more than a day.</exception>
        public TimeSpan MaxRetryDelay
        {
            get { return _maxRetryDelay; }
            set
            {
                CheckDelay(value, "MaxRetryDelay");
                _maxRetryDelay = value;
            }
        }

        /// <summary>
        /// How many connections at once calls may open to the gateway (or to the proxy they go
        /// through), so that threads sharing a processor are not queued behind .NET's default
        /// of two per endpoint (<see cref="ServicePointManager.DefaultConnectionLimit"/>). The
        /// limit of that one endpoint's <see cref="ServicePoint"/> is raised to it, never
        /// lowered; other endpoints and the process-wide default are left alone. Default 16.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">Less than 1.</exception>
        public int ConnectionLimit
        {
            get { return _connectionLimit; }
            set
            {
                if (value < 1)
                {
                    throw new ArgumentOutOfRangeException("value", value, "ConnectionLimit must be at least 1.");
                }
                _connectionLimit = value;
            }
        }

        /// <summary>
        /// The proxy requests go through. By default the system proxy
        /// (<see cref="WebRequest.DefaultWebProxy"/>, as configured for the application or the
        /// machine, read at each call) with the credentials configured for it, as
        /// <see cref="HttpWebRequest"/> uses it: none unless the application's configuration
        /// asks for the user's (<c>&lt;defaultProxy useDefaultCredentials="true"&gt;</c>). To
        /// give the proxy the credentials of the user the application runs as, set
        /// <c>Proxy.Credentials = CredentialCache.DefaultCredentials</c>. Null connects
        /// directly, as with <see cref="HttpWebRequest.Proxy"/>.
        /// </summary>
        public IWebProxy Proxy
        {
            get { return _proxy; }
            set { _proxy = value; }
        }

        /// <summary>
        /// Retrieves the banks mapped for a payment system, with the last row versions the
        /// next journal continues from.
        /// </summary>
        /// <param name="systemIdentifier">The payment system's unique identifier (its code).</param>
        /// <param name="isSuccess">
        /// True when the banks were read; false when FNG does not know the payment system
        /// (the document then lists no banks).
        /// </param>
        /// <returns>
        /// An <see cref="XmlDocument"/> whose document element is the <c>Request</c> document,
        /// as FMS returned it: <c>/Request/Banks/Bank</c> with <c>externalReference</c>,
        /// <c>lastOrderRowVersion</c> and <c>lastSettlementRowVersion</c>.
        /// </returns>
        /// <exception cref="ArgumentNullException"><paramref name="systemIdentifier"/> is null.</exception>
        /// <exception cref="GatewayException">
        /// The gateway refused or failed the call, or could not be reached. A payment system
        /// the account is not granted is refused with <c>NOT_PERMITTED</c>, not answered with
        /// <paramref name="isSuccess"/> false.
        /// </exception>
        public IXPathNavigable GetBanks(string systemIdentifier, out bool isSuccess)
        {
            isSuccess = false;
            if (systemIdentifier == null)
            {
                throw new ArgumentNullException("systemIdentifier");
            }
            XmlElement response = Invoke("GetBanks", "systemIdentifier", systemIdentifier, true);
            isSuccess = SoapMessages.Flag(response, "isSuccess");
            return SoapMessages.Document(SoapMessages.Result(response, "GetBanks"), "iso-8859-1");
        }

        /// <summary>
        /// Posts a <c>ControlAccounts</c> journal. It is posted at most once per payment system
        /// and <c>submissionID</c>: if the answer is lost the library sends it again and the
        /// gateway answers from its ledger, or settles with FNG whether it landed before
        /// posting it. The journal is sent exactly as given, the same bytes on every attempt.
        /// </summary>
        /// <param name="xmlData">
        /// The journal: an <see cref="XmlDocument"/> (its document element is sent), an
        /// <see cref="XmlElement"/>, or any other <see cref="IXPathNavigable"/> such as an
        /// <see cref="XPathDocument"/>.
        /// </param>
        /// <returns>
        /// An <see cref="XmlDocument"/> holding the <c>JournalResult</c> document: its
        /// <c>isSuccess</c> attribute, and when the journal was refused one <c>Error</c> per
        /// problem (<c>ROW_VERSION</c>, <c>CONTROL_TOTAL</c>, <c>UNMAPPED_PRODUCT</c>,
        /// <c>SUBMISSION_CONFLICT</c>…). A refused journal is a result, not an exception.
        /// </returns>
        /// <exception cref="ArgumentNullException"><paramref name="xmlData"/> is null.</exception>
        /// <exception cref="ArgumentException"><paramref name="xmlData"/> holds no element.</exception>
        /// <exception cref="GatewayException">
        /// The gateway refused or failed the call, or could not be reached. When its
        /// <see cref="GatewayException.Code"/> is <c>OUTCOME_UNKNOWN</c> the journal may or
        /// may not be posted (some attempt may have reached the gateway, and no answer said
        /// what became of it): send the same submission again later, the same
        /// <c>submissionID</c> and the journal unchanged, and it is posted once. The same holds
        /// for <c>GATEWAY_UNREACHABLE</c>, <c>TLS_FAILED</c>, <c>RECONCILIATION_FAILED</c> and
        /// <c>SUBMISSION_IN_PROGRESS</c>. <c>MALFORMED_REQUEST</c> with
        /// <see cref="GatewayException.Attempts"/> 0: the journal holds a character XML cannot
        /// carry, and nothing was sent.
        /// </exception>
        public IXPathNavigable PostJournals(IXPathNavigable xmlData)
        {
            if (xmlData == null)
            {
                throw new ArgumentNullException("xmlData");
            }
            XmlElement response = Invoke("PostJournals", "xmlData", SoapMessages.Markup(xmlData), true);
            return SoapMessages.Document(SoapMessages.Result(response, "PostJournals"), null);
        }

        /// <summary>
        /// Adds a note to the school's audit trail. A note is not idempotent, so it is sent
        /// again only when it surely did not arrive: no connection could be made, or the
        /// gateway answered <c>TOKEN_UNAVAILABLE</c>, which it can only do before it calls FNG.
        /// </summary>
        /// <param name="message">The note, up to 4,000 characters.</param>
        /// <returns>
        /// An <see cref="XmlDocument"/> holding the <c>AuditResult</c> document, whose
        /// <c>isSuccess</c> attribute says whether the note was recorded.
        /// </returns>
        /// <exception cref="ArgumentNullException"><paramref name="message"/> is null.</exception>
        /// <exception cref="GatewayException">
        /// The gateway refused or failed the call, or could not be reached (the message then
        /// says when the note may be recorded all the same). <c>MALFORMED_REQUEST</c> with
        /// <see cref="GatewayException.Attempts"/> 0: the message holds a character XML cannot
        /// carry, and nothing was sent.
        /// </exception>
        public IXPathNavigable PostAuditMessage(string message)
        {
            if (message == null)
            {
                throw new ArgumentNullException("message");
            }
            XmlElement response = Invoke("PostAuditMessage", "message", message, false);
            return SoapMessages.Document(SoapMessages.Result(response, "PostAuditMessage"), null);
        }

        /// <summary>
        /// Sends one call until it is answered, or until sending again would not help, would
        /// not be safe, or would outlast <see cref="CallTimeout"/>. <paramref name="idempotent"/>
        /// says whether the gateway makes a repeat harmless.
        /// </summary>
        private XmlElement Invoke(string operation, string parameter, string value, bool idempotent)
        {
            string empty = _username.Trim().Length == 0 ? "username" : (_password.Length == 0 ? "password" : null);
            if (empty != null)
            {
                throw new GatewayException(
                    "The " + empty + " given to FmsGeneralLedgerProcessor is empty: give the gateway integration account's "
                        + empty + " (nothing was sent).",
                    "AUTHENTICATION_FAILED", null, null, 0, 0, null);
            }
            Stopwatch clock = Stopwatch.StartNew();
            TimeSpan callTimeout = _callTimeout;
            int length;
            byte[] body = SoapMessages.Request(operation, parameter, value, _username, _password, _database, out length);
            string action = SoapMessages.Action(operation);
            string requestId = Guid.NewGuid().ToString("N");
            int maxAttempts = _maxAttempts;
            TimeSpan timeout = _timeout;
            int connectionLimit = _connectionLimit;
            IWebProxy proxy = _proxy;
            // Whether any attempt may have reached the gateway: then a journal may be posted,
            // whatever later attempts say, until an answer settles it.
            bool reached = false;
            for (int attempts = 1; ; attempts++)
            {
                TimeSpan left = callTimeout - clock.Elapsed;
                TimeSpan attemptTimeout = left < timeout ? left : timeout;
                if (attemptTimeout < TimeSpan.FromMilliseconds(1))
                {
                    attemptTimeout = TimeSpan.FromMilliseconds(1);
                }
                Attempt attempt = SoapTransport.Send(
                    _service, action, body, length, requestId, attemptTimeout, left, proxy, idempotent, connectionLimit);
                if (attempt.Outcome == AttemptOutcome.Answered)
                {
                    if (SoapMessages.Result(attempt.Response, operation) != null)
                    {
                        return attempt.Response;
                    }
                    if (attempt.Response.LocalName == operation + "Response"
                        && attempt.Response.NamespaceURI == SoapMessages.ServiceNamespace)
                    {
                        // The gateway's answer, without its result: it handled the call.
                        attempt.Outcome = AttemptOutcome.Lost;
                        attempt.MayHaveArrived = true;
                        attempt.Problem = "the answer is a " + operation + "Response without its result";
                    }
                    else
                    {
                        attempt.Outcome = AttemptOutcome.Unexpected;
                        attempt.Problem = "the answer is a SOAP message but not a " + operation + "Response";
                    }
                }
                if (attempt.Outcome == AttemptOutcome.Fault)
                {
                    // A fault that is the server's may come after the gateway acted (an
                    // internal error once FNG posted the journal), except TOKEN_UNAVAILABLE,
                    // which comes before the gateway calls FNG.
                    GatewayFault fault = attempt.Fault;
                    attempt.MayHaveArrived = Array.IndexOf(InFlightFaults, fault.Code) >= 0
                        || (fault.IsServer
                            && Array.IndexOf(UndeliveredFaults, fault.Code) < 0
                            && Array.IndexOf(RefusedFaults, fault.Code) < 0);
                }
                reached |= attempt.MayHaveArrived;
                bool resend = MayResend(attempt, idempotent);
                if (!resend || attempts >= maxAttempts)
                {
                    throw Failure(operation, attempt, attempts, requestId, resend, reached);
                }
                TimeSpan wait = Delay(attempts);
                // The next attempt must have time to be answered: at least a second (or
                // Timeout, if shorter) before the call's time runs out.
                TimeSpan least = timeout < MinimumAttempt ? timeout : MinimumAttempt;
                if (clock.Elapsed + wait + least > callTimeout)
                {
                    if (attempt.Outcome != AttemptOutcome.Fault)
                    {
                        attempt.Problem += "; CallTimeout left no time for another attempt";
                    }
                    throw Failure(operation, attempt, attempts, requestId, true, reached);
                }
                Thread.Sleep(wait);
            }
        }

        private static bool MayResend(Attempt attempt, bool idempotent)
        {
            switch (attempt.Outcome)
            {
                case AttemptOutcome.NotConnected:
                    return true;
                case AttemptOutcome.Lost:
                case AttemptOutcome.ServerError:
                case AttemptOutcome.HandshakeFailed:
                    return idempotent;
                case AttemptOutcome.Fault:
                    if (Array.IndexOf(RefusedFaults, attempt.Fault.Code) >= 0)
                    {
                        return false;
                    }
                    if (idempotent)
                    {
                        // The gateway's ledger makes a resend of GetBanks and PostJournals
                        // safe, so every fault that is the server's, not the request's, is
                        // worth another attempt.
                        return attempt.Fault.IsServer || Array.IndexOf(ResendableFaults, attempt.Fault.Code) >= 0;
                    }
                    return Array.IndexOf(UndeliveredFaults, attempt.Fault.Code) >= 0;
                default:
                    return false;
            }
        }

        /// <summary>The wait after attempt number <paramref name="attempts"/>.</summary>
        private TimeSpan Delay(int attempts)
        {
            // 2^30 times a day is still a finite number of milliseconds, and zero times it is
            // zero (2^1024 would be infinity, and zero times infinity NaN).
            int exponent = Math.Min(attempts - 1, 30);
            double milliseconds = _retryDelay.TotalMilliseconds * Math.Pow(2, exponent);
            milliseconds = Math.Min(milliseconds, _maxRetryDelay.TotalMilliseconds);
            double random;
            lock (Jitter)
            {
                random = Jitter.NextDouble();
            }
            return TimeSpan.FromMilliseconds(milliseconds * (1 + (0.25 * random)));
        }

        private GatewayException Failure(
            string operation, Attempt attempt, int attempts, string requestId, bool gaveUp, bool reached)
        {
            string id = attempt.Fault != null && !string.IsNullOrEmpty(attempt.Fault.RequestId)
                ? attempt.Fault.RequestId
                : (string.IsNullOrEmpty(attempt.RequestId) ? requestId : attempt.RequestId);
            string tries = attempts == 1 ? "1 attempt" : attempts + " attempts";
            string exceptionType = attempt.Fault == null ? null : attempt.Fault.ExceptionType;
            string last = attempt.Outcome == AttemptOutcome.Fault ? attempt.Fault.FaultString.TrimEnd('.') : attempt.Problem;
            if (operation == "PostJournals" && reached)
            {
                // Some attempt may have posted the journal and no answer says whether it did:
                // whatever the last attempt ran into, the one safe course is to send the same
                // submission again, which the gateway's ledger posts at most once.
                string message = "The journal may have been posted: it may have reached the gateway at " + _service
                    + " and no answer says whether it was posted (" + tries + "; the last: " + last + "); "
                    + ResendJournal + ".";
                return new GatewayException(
                    message, OutcomeUnknown, id, exceptionType, attempt.HttpStatus, attempts, attempt.Error);
            }

            string again = operation == "PostJournals"
                ? ResendJournal
                : "try again later";
            string code;
            string text;
            switch (attempt.Outcome)
            {
                case AttemptOutcome.Fault:
                    code = attempt.Fault.Code;
                    text = attempt.Fault.FaultString;
                    if (gaveUp)
                    {
                        text = text.TrimEnd('.') + " (still so after " + tries + "; " + again + ").";
                    }
                    else if (operation == "PostAuditMessage" && attempt.MayHaveArrived)
                    {
                        text = text.TrimEnd('.') + " (the note may have been recorded all the same; it was not sent again, to avoid a second note).";
                    }
                    break;
                case AttemptOutcome.NotConnected:
                case AttemptOutcome.ServerError:
                case AttemptOutcome.Lost:
                    code = GatewayException.GatewayUnreachable;
                    if (operation == "PostAuditMessage" && attempt.MayHaveArrived)
                    {
                        text = "The audit message may have reached the gateway at " + _service + " but no answer came ("
                            + attempt.Problem + "), so the note may be recorded; it was not sent again, to avoid a second note.";
                    }
                    else
                    {
                        text = "No answer came from the gateway at " + _service + " after " + tries
                            + " (" + attempt.Problem + "); check "
                            + (attempt.Outcome == AttemptOutcome.Lost ? string.Empty : "the server address and ")
                            + "the network, then " + again + ".";
                    }
                    break;
                case AttemptOutcome.HandshakeFailed:
                    code = GatewayException.TlsFailed;
                    text = "The TLS connection to " + _service.Authority + " could not be set up after " + tries + " ("
                        + attempt.Problem + "); make sure this machine has TLS 1.2 enabled and that nothing between it and the gateway interferes, then "
                        + again + "." + PlainHttpHint();
                    break;
                case AttemptOutcome.TlsFailed:
                    code = GatewayException.TlsFailed;
                    text = "The TLS connection to " + _service.Authority + " could not be set up ("
                        + attempt.Problem + "); make sure this machine trusts the gateway's certificate and has TLS 1.2 enabled." + PlainHttpHint();
                    break;
                default:
                    code = GatewayException.UnexpectedResponse;
                    text = "The address " + _service + " did not answer as the gateway's E-Journal service ("
                        + attempt.Problem + "); check the server address given to the constructor.";
                    break;
            }
            return new GatewayException(text, code, id, exceptionType, attempt.HttpStatus, attempts, attempt.Error);
        }

        /// <summary>
        /// For a TLS failure at an address given without a scheme: that means https, and a
        /// gateway serving plain http (the sandbox, a local test) fails the handshake.
        /// </summary>
        private string PlainHttpHint()
        {
            return _httpsImplied
                ? " The server address was given without a scheme, which means https: if the gateway at "
                    + _service.Authority + " serves plain http, as the sandbox does, write http:// before it."
                : string.Empty;
        }

        private static void CheckTimeout(TimeSpan value, string name)
        {
            if (value <= TimeSpan.Zero || value.TotalMilliseconds > int.MaxValue)
            {
                throw new ArgumentOutOfRangeException("value", value, name + " must be more than zero and at most Int32.MaxValue milliseconds.");
            }
        }

        private static void CheckDelay(TimeSpan value, string name)
        {
            if (value < TimeSpan.Zero || value > TimeSpan.FromDays(1))
            {
                throw new ArgumentOutOfRangeException("value", value, name + " must be from zero to one day.");
            }
        }
    }
}
