using System;
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

        /// <summary>Faults the gateway sends before anything reaches FNG.</summary>
        private static readonly string[] UndeliveredFaults =
        {
            "TOKEN_UNAVAILABLE",
            "STORE_UNAVAILABLE",
        };

        private static readonly Random Jitter = new Random();

        private readonly Uri _service;
        private readonly string _database;
        private readonly string _username;
        private readonly string _password;

        private TimeSpan _timeout = TimeSpan.FromSeconds(100);
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
        /// <see cref="HttpWebRequest.ReadWriteTimeout"/>). Default 100 seconds, .NET's own.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">Not more than zero, or above <see cref="int.MaxValue"/> milliseconds.</exception>
        public TimeSpan Timeout
        {
            get { return _timeout; }
            set
            {
                if (value <= TimeSpan.Zero || value.TotalMilliseconds > int.MaxValue)
                {
                    throw new ArgumentOutOfRangeException("value", value, "Timeout must be more than zero and at most Int32.MaxValue milliseconds.");
                }
                _timeout = value;
            }
        }

        /// <summary>
        /// How many times a call may be sent in all, the first time included. Default 8,
        /// which with the default delays waits about 90 seconds in all: longer than the
        /// gateway takes to settle a submission a failed gateway process left in flight.
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
        /// The proxy requests go through. By default the system proxy
        /// (<see cref="WebRequest.DefaultWebProxy"/>, as configured for the application or the
        /// machine, read at each call) with the credentials of the user the application runs
        /// as. Null connects directly, as with <see cref="HttpWebRequest.Proxy"/>.
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
        /// <exception cref="GatewayException">The gateway refused or failed the call, or could not be reached.</exception>
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
        /// <see cref="GatewayException.Code"/> is <c>OUTCOME_UNKNOWN</c>,
        /// <c>RECONCILIATION_FAILED</c>, <c>SUBMISSION_IN_PROGRESS</c> or
        /// <c>GATEWAY_UNREACHABLE</c>, send the same submission again later: it is posted once.
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
        /// again only when it surely did not arrive (no connection could be made, or the
        /// gateway said it had not passed the note on).
        /// </summary>
        /// <param name="message">The note, up to 4,000 characters.</param>
        /// <returns>
        /// An <see cref="XmlDocument"/> holding the <c>AuditResult</c> document, whose
        /// <c>isSuccess</c> attribute says whether the note was recorded.
        /// </returns>
        /// <exception cref="ArgumentNullException"><paramref name="message"/> is null.</exception>
        /// <exception cref="GatewayException">The gateway refused or failed the call, or could not be reached.</exception>
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
        /// Sends one call until it is answered, or until sending again would not help or not be
        /// safe. <paramref name="idempotent"/> says whether the gateway makes a repeat harmless.
        /// </summary>
        private XmlElement Invoke(string operation, string parameter, string value, bool idempotent)
        {
            byte[] body = SoapMessages.Request(operation, parameter, value, _username, _password, _database);
            string action = SoapMessages.Action(operation);
            string requestId = Guid.NewGuid().ToString("N");
            int maxAttempts = _maxAttempts;
            for (int attempts = 1; ; attempts++)
            {
                Attempt attempt = SoapTransport.Send(_service, action, body, requestId, _timeout, _proxy, idempotent);
                if (attempt.Outcome == AttemptOutcome.Answered)
                {
                    if (SoapMessages.Result(attempt.Response, operation) != null)
                    {
                        return attempt.Response;
                    }
                    attempt.Outcome = AttemptOutcome.Unexpected;
                    attempt.Problem = "the answer is a SOAP message but not a " + operation + "Response with its result";
                }
                bool resend = MayResend(attempt, idempotent);
                if (!resend || attempts >= maxAttempts)
                {
                    throw Failure(operation, attempt, attempts, requestId, resend);
                }
                Thread.Sleep(Delay(attempts));
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
                    return idempotent;
                case AttemptOutcome.Fault:
                    return Array.IndexOf(idempotent ? ResendableFaults : UndeliveredFaults, attempt.Fault.Code) >= 0;
                default:
                    return false;
            }
        }

        /// <summary>The wait after attempt number <paramref name="attempts"/>.</summary>
        private TimeSpan Delay(int attempts)
        {
            double milliseconds = _retryDelay.TotalMilliseconds * Math.Pow(2, attempts - 1);
            milliseconds = Math.Min(milliseconds, _maxRetryDelay.TotalMilliseconds);
            double random;
            lock (Jitter)
            {
                random = Jitter.NextDouble();
            }
            return TimeSpan.FromMilliseconds(milliseconds * (1 + (0.25 * random)));
        }

        private GatewayException Failure(string operation, Attempt attempt, int attempts, string requestId, bool gaveUp)
        {
            string id = attempt.Fault != null && !string.IsNullOrEmpty(attempt.Fault.RequestId)
                ? attempt.Fault.RequestId
                : (string.IsNullOrEmpty(attempt.RequestId) ? requestId : attempt.RequestId);
            string tries = attempts == 1 ? "1 attempt" : attempts + " attempts";
            string again = operation == "PostJournals"
                ? "send the same submission again later: the gateway posts it at most once"
                : "try again later";
            string code;
            string message;
            string exceptionType = null;
            switch (attempt.Outcome)
            {
                case AttemptOutcome.Fault:
                    code = attempt.Fault.Code;
                    exceptionType = attempt.Fault.ExceptionType;
                    message = attempt.Fault.FaultString;
                    if (gaveUp)
                    {
                        message = message.TrimEnd('.') + " (still so after " + tries + "; " + again + ").";
                    }
                    break;
                case AttemptOutcome.NotConnected:
                case AttemptOutcome.ServerError:
                    code = GatewayException.GatewayUnreachable;
                    message = "No answer came from the gateway at " + _service + " after " + tries
                        + " (" + attempt.Problem + "); check the server address and the network, then " + again + ".";
                    break;
                case AttemptOutcome.Lost:
                    code = GatewayException.GatewayUnreachable;
                    message = gaveUp || operation != "PostAuditMessage"
                        ? "No answer came from the gateway at " + _service + " after " + tries
                            + " (" + attempt.Problem + "); check the network, then " + again + "."
                        : "The audit message may have reached the gateway at " + _service + " but no answer came ("
                            + attempt.Problem + "), so the note may be recorded; it was not sent again, to avoid a second note.";
                    break;
                case AttemptOutcome.TlsFailed:
                    code = GatewayException.TlsFailed;
                    message = "The TLS connection to " + _service.Authority + " could not be set up ("
                        + attempt.Problem + "); make sure this machine trusts the gateway's certificate and has TLS 1.2 enabled.";
                    break;
                default:
                    code = GatewayException.UnexpectedResponse;
                    message = "The address " + _service + " did not answer as the gateway's E-Journal service ("
                        + attempt.Problem + "); check the server address given to the constructor.";
                    break;
            }
            return new GatewayException(message, code, id, exceptionType, attempt.HttpStatus, attempts, attempt.Error);
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
