using System;
using System.IO;
using System.Net;
using System.Reflection;
using System.Threading;
using System.Xml;

namespace CSFMSEJournalInterface
{
    /// <summary>How one HTTP attempt ended.</summary>
    internal enum AttemptOutcome
    {
        /// <summary>The service answered with a SOAP message that is not a fault.</summary>
        Answered,

        /// <summary>The gateway answered with a SOAP fault.</summary>
        Fault,

        /// <summary>No connection could be made: the request surely never left.</summary>
        NotConnected,

        /// <summary>
        /// The connection failed, was lost or timed out, or the answer could not be read whole
        /// (cut short, corrupt, not a SOAP message though it said 200 OK).
        /// </summary>
        Lost,

        /// <summary>An HTTP 5xx answer that is not the gateway's fault (an ingress or proxy).</summary>
        ServerError,

        /// <summary>
        /// The TLS handshake failed for a reason other than the certificate (the connection
        /// was reset or closed during it): nothing was sent, and it may work next time.
        /// </summary>
        HandshakeFailed,

        /// <summary>The server's certificate is not trusted: nothing was sent, and trying again will not help.</summary>
        TlsFailed,

        /// <summary>An answer that is not the E-Journal service's.</summary>
        Unexpected,
    }

    /// <summary>What one attempt produced.</summary>
    internal sealed class Attempt
    {
        internal AttemptOutcome Outcome;

        /// <summary>
        /// Whether the request may have reached the gateway and been acted on: its body was
        /// (or may have been) sent and no answer says it was refused untouched.
        /// </summary>
        internal bool MayHaveArrived;

        /// <summary>The body element of the answer (the operation's response), when answered.</summary>
        internal XmlElement Response;

        /// <summary>The gateway's fault, when it sent one.</summary>
        internal GatewayFault Fault;

        /// <summary>HTTP status of the answer, 0 when none came.</summary>
        internal int HttpStatus;

        /// <summary>The X-Request-Id header of the answer, if any.</summary>
        internal string RequestId;

        /// <summary>What went wrong, in a few words, for the exception's message.</summary>
        internal string Problem;

        /// <summary>The exception behind a failure, if any.</summary>
        internal Exception Error;
    }

    /// <summary>
    /// Sends one SOAP 1.1 request with <see cref="HttpWebRequest"/> and classifies the outcome.
    /// It never retries: <see cref="FmsGeneralLedgerProcessor"/> decides that.
    /// </summary>
    internal static class SoapTransport
    {
        /// <summary>The most the library reads of an answer (the E-Journal's are small).</summary>
        private const int MaxAnswerBytes = 64 * 1024 * 1024;

        /// <summary>TLS 1.2 in <see cref="SecurityProtocolType"/>, which .NET 4.5 knows as Tls12.</summary>
        private const int Tls12 = 3072;

        internal static readonly string UserAgent = BuildUserAgent();

        private static string BuildUserAgent()
        {
            Assembly assembly = typeof(SoapTransport).Assembly;
            var informational = (AssemblyInformationalVersionAttribute)Attribute.GetCustomAttribute(
                assembly, typeof(AssemblyInformationalVersionAttribute));
            string version = informational != null
                ? informational.InformationalVersion
                : assembly.GetName().Version.ToString();
            return "CSFMSEJournalInterface/" + version + " (fng-gateway E-Journal client; CLR "
                + Environment.Version + ")";
        }

        /// <summary>
        /// Makes sure TLS 1.2 may be used, adding it to the protocols already allowed and
        /// removing none. .NET Framework 4.5 and 4.6 allow only TLS 1.0 and 1.1 by default;
        /// from 4.7 the default is SystemDefault (0), which leaves the choice (TLS 1.3
        /// included, where the system has it) to the operating system, and is left alone.
        /// TLS 1.3 is not added to a list an application set itself: some Windows versions
        /// fail handshakes when it is asked for explicitly.
        /// </summary>
        internal static void EnableModernTls()
        {
            int current = (int)ServicePointManager.SecurityProtocol;
            if (current != 0 && (current & Tls12) == 0)
            {
                ServicePointManager.SecurityProtocol = (SecurityProtocolType)(current | Tls12);
            }
        }

        /// <summary>
        /// Sends the first <paramref name="length"/> bytes of <paramref name="body"/> once and
        /// says how it went. <paramref name="keepAlive"/> false closes the connection after the
        /// call. Each step may take <paramref name="timeout"/>; the whole attempt is cut off
        /// after <paramref name="left"/>, when the call's own time runs out.
        /// </summary>
        internal static Attempt Send(
            Uri service,
            string action,
            byte[] body,
            int length,
            string requestId,
            TimeSpan timeout,
            TimeSpan left,
            IWebProxy proxy,
            bool keepAlive,
            int connectionLimit)
        {
            if (service.Scheme == Uri.UriSchemeHttps)
            {
                EnableModernTls();
            }
            var request = (HttpWebRequest)WebRequest.Create(service);
            request.Method = "POST";
            request.ContentType = "text/xml; charset=utf-8";
            request.Accept = "text/xml";
            request.UserAgent = UserAgent;
            request.Headers["SOAPAction"] = action;
            request.Headers["X-Request-Id"] = requestId;
            request.AllowAutoRedirect = false;
            request.AutomaticDecompression = DecompressionMethods.GZip | DecompressionMethods.Deflate;
            request.Timeout = (int)timeout.TotalMilliseconds;
            request.ReadWriteTimeout = (int)timeout.TotalMilliseconds;
            request.Proxy = proxy;
            request.ContentLength = length;
            // The body is in memory already, so the framework need not copy it again: except
            // through a proxy, which may ask for credentials (407) and then needs the request
            // sent again, body included.
            request.AllowWriteStreamBuffering = !IsDirect(proxy, service);
            // The framework may quietly send a request again when a reused connection fails;
            // a call that must not arrive twice goes on a connection of its own.
            request.KeepAlive = keepAlive;
            // The framework allows two connections per endpoint unless told otherwise, which
            // would queue the calls of a processor shared by many threads. Raised for this
            // endpoint (or the proxy the requests go through) only, never lowered.
            RaiseConnectionLimit(request, connectionLimit);

            var cutOff = new CutOff(request);
            using (new Timer(CutOff.Fire, cutOff, Math.Max(1L, (long)left.TotalMilliseconds), Timeout.Infinite))
            {
                Attempt attempt = Exchange(request, body, length);
                if (cutOff.Fired && attempt.Outcome == AttemptOutcome.Lost)
                {
                    attempt.Problem = "no answer came before the call's time (CallTimeout) ran out";
                }
                return attempt;
            }
        }

        private static Attempt Exchange(HttpWebRequest request, byte[] body, int length)
        {
            HttpWebResponse response;
            Stream stream;
            try
            {
                stream = request.GetRequestStream();
            }
            catch (Exception exception)
            {
                if (IsFatal(exception))
                {
                    throw;
                }
                // Connecting, or setting up TLS, failed: the body was not sent.
                Discard(exception);
                return Failed(exception, false);
            }
            try
            {
                using (stream)
                {
                    stream.Write(body, 0, length);
                }
                response = (HttpWebResponse)request.GetResponse();
            }
            catch (WebException exception)
            {
                response = exception.Response as HttpWebResponse;
                if (exception.Status != WebExceptionStatus.ProtocolError || response == null)
                {
                    Discard(exception);
                    return Failed(exception, true);
                }
            }
            catch (Exception exception)
            {
                if (IsFatal(exception))
                {
                    throw;
                }
                return Failed(exception, true);
            }

            using (response)
            {
                return Read(response);
            }
        }

        private static void RaiseConnectionLimit(HttpWebRequest request, int connectionLimit)
        {
            try
            {
                ServicePoint point = request.ServicePoint;
                if (point.ConnectionLimit < connectionLimit)
                {
                    point.ConnectionLimit = connectionLimit;
                }
            }
            catch (Exception exception)
            {
                // Finding the endpoint failed (a broken proxy script, say): the request
                // itself will fail and say why.
                if (IsFatal(exception))
                {
                    throw;
                }
            }
        }

        /// <summary>Closes the answer a failed request may still hold, and its connection.</summary>
        private static void Discard(Exception exception)
        {
            var web = exception as WebException;
            if (web != null && web.Response != null)
            {
                web.Response.Close();
            }
        }

        /// <summary>Whether requests to <paramref name="service"/> go straight to it.</summary>
        private static bool IsDirect(IWebProxy proxy, Uri service)
        {
            if (proxy == null)
            {
                return true;
            }
            try
            {
                if (proxy.IsBypassed(service))
                {
                    return true;
                }
                Uri through = proxy.GetProxy(service);
                return through == null || through == service;
            }
            catch (Exception exception)
            {
                if (IsFatal(exception))
                {
                    throw;
                }
                return false;
            }
        }

        private static Attempt Read(HttpWebResponse response)
        {
            var attempt = new Attempt();
            attempt.HttpStatus = (int)response.StatusCode;
            attempt.RequestId = response.Headers["X-Request-Id"];
            byte[] data;
            try
            {
                data = ReadAll(response.GetResponseStream());
            }
            catch (Exception exception)
            {
                // A connection lost, a timeout, a corrupt compressed body
                // (InvalidDataException on .NET Framework): the answer is lost.
                if (IsFatal(exception))
                {
                    throw;
                }
                return Lost(attempt, "the answer could not be read whole (" + Describe(exception) + ")", exception);
            }
            if (data == null)
            {
                attempt.Outcome = AttemptOutcome.Unexpected;
                attempt.MayHaveArrived = attempt.HttpStatus == 200 || attempt.HttpStatus >= 500;
                attempt.Problem = "the answer is larger than " + MaxAnswerBytes + " bytes";
                return attempt;
            }
            string encoding = response.Headers["Content-Encoding"];
            long declared = response.ContentLength;
            if (string.IsNullOrEmpty(encoding) && declared >= 0 && data.Length < declared)
            {
                return Lost(attempt, "the answer was cut short (" + data.Length + " of " + declared + " bytes)", null);
            }

            XmlElement element = SoapMessages.BodyElement(data);
            if (element != null && SoapMessages.IsFault(element))
            {
                GatewayFault fault = SoapMessages.ReadFault(element);
                if (fault != null)
                {
                    attempt.Outcome = AttemptOutcome.Fault;
                    attempt.Fault = fault;
                    return attempt;
                }
            }
            else if (element != null && attempt.HttpStatus == 200)
            {
                attempt.Outcome = AttemptOutcome.Answered;
                attempt.Response = element;
                return attempt;
            }

            string what = "HTTP " + attempt.HttpStatus + " " + response.StatusDescription;
            string type = response.ContentType;
            if (attempt.HttpStatus == 200 && !string.IsNullOrEmpty(type)
                && type.IndexOf("xml", StringComparison.OrdinalIgnoreCase) < 0)
            {
                // The gateway answers in XML, whole or cut short: a web page is another
                // server's answer (a wrong address), not the gateway's.
                attempt.Outcome = AttemptOutcome.Unexpected;
                attempt.Problem = Unexpected(response, what);
                return attempt;
            }
            if (attempt.HttpStatus == 200)
            {
                // 200 OK is the gateway's answer, or what was left of it: the request was
                // handled, and its answer lost.
                return Lost(
                    attempt,
                    "the answer (" + what + (string.IsNullOrEmpty(type) ? string.Empty : ", " + type)
                        + ", " + data.Length + " bytes) is not a whole SOAP message",
                    null);
            }
            if (attempt.HttpStatus >= 500)
            {
                attempt.Outcome = AttemptOutcome.ServerError;
                attempt.MayHaveArrived = true;
                attempt.Problem = "the server answered " + what + " without the gateway's SOAP fault";
            }
            else
            {
                attempt.Outcome = AttemptOutcome.Unexpected;
                attempt.Problem = Unexpected(response, what);
            }
            return attempt;
        }

        private static string Unexpected(HttpWebResponse response, string what)
        {
            int status = (int)response.StatusCode;
            if (status == 407)
            {
                return "the proxy answered " + what + ": it wants credentials, which the Proxy property can carry";
            }
            if (status >= 300 && status < 400)
            {
                string location = response.Headers["Location"];
                return "the address answered " + what
                    + (string.IsNullOrEmpty(location) ? string.Empty : " to " + location)
                    + ", a redirect the library does not follow";
            }
            string type = response.ContentType;
            return "the address answered " + what
                + (string.IsNullOrEmpty(type) ? string.Empty : " (" + type + ")")
                + ", which is not the E-Journal service's answer";
        }

        /// <summary>The whole stream, or null when it is larger than the library reads.</summary>
        private static byte[] ReadAll(Stream stream)
        {
            using (stream)
            using (var buffer = new MemoryStream())
            {
                var chunk = new byte[16384];
                int read;
                while ((read = stream.Read(chunk, 0, chunk.Length)) > 0)
                {
                    if (buffer.Length + read > MaxAnswerBytes)
                    {
                        return null;
                    }
                    buffer.Write(chunk, 0, read);
                }
                return buffer.ToArray();
            }
        }

        /// <summary>
        /// An attempt that failed with <paramref name="exception"/>; <paramref name="sending"/>
        /// says whether the body may have been sent.
        /// </summary>
        private static Attempt Failed(Exception exception, bool sending)
        {
            var attempt = new Attempt();
            attempt.Error = exception;
            var web = exception as WebException;
            WebExceptionStatus status = web == null ? WebExceptionStatus.UnknownError : web.Status;
            if (status == WebExceptionStatus.TrustFailure || IsCertificateProblem(exception))
            {
                attempt.Outcome = AttemptOutcome.TlsFailed;
                attempt.Problem = Describe(exception);
                return attempt;
            }
            if (IsPlainPeer(exception))
            {
                // The server answered the handshake with something that is not TLS (plain
                // http, most often): a new attempt meets the same server.
                attempt.Outcome = AttemptOutcome.TlsFailed;
                attempt.Problem = "the server does not speak TLS: " + Describe(exception);
                return attempt;
            }
            if (status == WebExceptionStatus.SecureChannelFailure || IsTls(exception))
            {
                attempt.Outcome = AttemptOutcome.HandshakeFailed;
                attempt.Problem = "the TLS handshake failed: " + Describe(exception);
                return attempt;
            }
            switch (status)
            {
                case WebExceptionStatus.NameResolutionFailure:
                case WebExceptionStatus.ProxyNameResolutionFailure:
                case WebExceptionStatus.ConnectFailure:
                    attempt.Outcome = AttemptOutcome.NotConnected;
                    attempt.Problem = "no connection could be made: " + Describe(exception);
                    return attempt;
                case WebExceptionStatus.Timeout:
                    Lost(attempt, "no answer came in time", exception);
                    break;
                default:
                    Lost(attempt, "the connection failed: " + Describe(exception), exception);
                    break;
            }
            attempt.MayHaveArrived = sending;
            return attempt;
        }

        private static Attempt Lost(Attempt attempt, string problem, Exception exception)
        {
            attempt.Outcome = AttemptOutcome.Lost;
            attempt.MayHaveArrived = true;
            attempt.Problem = problem;
            attempt.Error = exception;
            return attempt;
        }

        /// <summary>Exceptions no caller should see swallowed.</summary>
        internal static bool IsFatal(Exception exception)
        {
            return exception is OutOfMemoryException
                || exception is StackOverflowException
                || exception is ThreadAbortException
                || exception is AccessViolationException;
        }

        private static bool IsTls(Exception exception)
        {
            for (Exception e = exception; e != null; e = e.InnerException)
            {
                if (e is System.Security.Authentication.AuthenticationException)
                {
                    return true;
                }
            }
            return false;
        }

        /// <summary>
        /// Whether a TLS handshake failed because the server's first bytes are not TLS at all:
        /// OpenSSL and BoringSSL (Mono) say WRONG_VERSION_NUMBER, .NET Framework's SChannel
        /// "an unexpected packet format".
        /// </summary>
        private static bool IsPlainPeer(Exception exception)
        {
            if (!IsTls(exception))
            {
                return false;
            }
            for (Exception e = exception; e != null; e = e.InnerException)
            {
                if (e.Message.IndexOf("WRONG_VERSION_NUMBER", StringComparison.OrdinalIgnoreCase) >= 0
                    || e.Message.IndexOf("unexpected packet format", StringComparison.OrdinalIgnoreCase) >= 0)
                {
                    return true;
                }
            }
            return false;
        }

        /// <summary>
        /// Whether a TLS failure is about the server's certificate, which a new attempt will
        /// not change. .NET Framework says so with <see cref="WebExceptionStatus.TrustFailure"/>;
        /// other runtimes may only name it in an inner exception.
        /// </summary>
        private static bool IsCertificateProblem(Exception exception)
        {
            if (!IsTls(exception))
            {
                return false;
            }
            for (Exception e = exception; e != null; e = e.InnerException)
            {
                if (e.Message.IndexOf("certificate", StringComparison.OrdinalIgnoreCase) >= 0)
                {
                    return true;
                }
            }
            return false;
        }

        /// <summary>The innermost message, which names the cause (refused, reset, …).</summary>
        private static string Describe(Exception exception)
        {
            Exception inner = exception;
            while (inner.InnerException != null)
            {
                inner = inner.InnerException;
            }
            string outer = exception.Message.Trim().TrimEnd('.');
            string message = inner.Message.Trim().TrimEnd('.');
            return inner == exception || outer.Contains(message) ? outer : outer + " (" + message + ")";
        }

        /// <summary>Aborts a request when the call's time runs out.</summary>
        private sealed class CutOff
        {
            private readonly HttpWebRequest _request;
            private int _fired;

            internal CutOff(HttpWebRequest request)
            {
                _request = request;
            }

            internal bool Fired
            {
                get { return Thread.VolatileRead(ref _fired) != 0; }
            }

            internal static void Fire(object state)
            {
                var cutOff = (CutOff)state;
                Interlocked.Exchange(ref cutOff._fired, 1);
                try
                {
                    cutOff._request.Abort();
                }
                catch (Exception exception)
                {
                    if (IsFatal(exception))
                    {
                        throw;
                    }
                }
            }
        }
    }
}
