using System;
using System.Runtime.Serialization;
using System.Security.Permissions;

namespace CSFMSEJournalInterface
{
    /// <summary>
    /// What FMS 6 would have thrown: the gateway refused or failed the call, or could not be
    /// reached. Problems with a journal's content are not exceptions: they come back in the
    /// <c>JournalResult</c> document with <c>isSuccess="false"</c>, as they did with FMS.
    /// </summary>
    /// <remarks>
    /// <para><see cref="Code"/> is the gateway's fault code (for instance
    /// <c>AUTHENTICATION_FAILED</c>, <c>NOT_PERMITTED</c>, <c>XML_REJECTED</c>,
    /// <c>OUTCOME_UNKNOWN</c>) or one of the library's own:</para>
    /// <list type="bullet">
    /// <item><description><c>GATEWAY_UNREACHABLE</c>: no answer came from the gateway (the
    /// connection could not be made, was lost, or a proxy in front of the gateway answered
    /// with an HTTP 5xx error) after the attempts the call allows.</description></item>
    /// <item><description><c>TLS_FAILED</c>: the TLS connection could not be set up (the
    /// certificate is not trusted, or client and server share no TLS version).</description></item>
    /// <item><description><c>UNEXPECTED_RESPONSE</c>: something answered that is not the
    /// gateway's E-Journal service (for instance an HTML page from a wrong address).</description></item>
    /// </list>
    /// <para>The library also uses two of the gateway's codes itself. <c>OUTCOME_UNKNOWN</c>,
    /// from <c>PostJournals</c>: some attempt may have reached the gateway and no answer said
    /// whether the journal was posted, whatever the last attempt ran into (the message says
    /// what); send the same submission again, the same <c>submissionID</c> and the journal
    /// unchanged, and it is posted once. <c>MALFORMED_REQUEST</c> with <see cref="Attempts"/>
    /// 0: a value holds a character XML cannot carry, and nothing was sent.
    /// <c>AUTHENTICATION_FAILED</c> with <see cref="Attempts"/> 0: the username or password
    /// given to the constructor is empty, and nothing was sent.</para>
    /// <para>Quote <see cref="RequestId"/> to the gateway's operators: its log lines carry it.</para>
    /// </remarks>
    [Serializable]
    public class GatewayException : Exception
    {
        /// <summary>The library's code when no answer came from the gateway.</summary>
        public const string GatewayUnreachable = "GATEWAY_UNREACHABLE";

        /// <summary>The library's code when the TLS connection could not be set up.</summary>
        public const string TlsFailed = "TLS_FAILED";

        /// <summary>The library's code when the answer is not the E-Journal service's.</summary>
        public const string UnexpectedResponse = "UNEXPECTED_RESPONSE";

        private readonly string _code;
        private readonly string _requestId;
        private readonly string _exceptionType;
        private readonly int _httpStatus;
        private readonly int _attempts;

        /// <summary>Creates an exception with no details.</summary>
        public GatewayException()
        {
        }

        /// <summary>Creates an exception with a message and no other details.</summary>
        /// <param name="message">What is wrong and what to do.</param>
        public GatewayException(string message)
            : base(message)
        {
        }

        /// <summary>Creates an exception with a message and its cause.</summary>
        /// <param name="message">What is wrong and what to do.</param>
        /// <param name="innerException">The exception that caused this one.</param>
        public GatewayException(string message, Exception innerException)
            : base(message, innerException)
        {
        }

        /// <summary>Creates an exception with all its details (for tests of calling code).</summary>
        /// <param name="message">What is wrong and what to do.</param>
        /// <param name="code">The gateway's fault code, or the library's own.</param>
        /// <param name="requestId">The request id the gateway logged the call under.</param>
        /// <param name="exceptionType">The <c>[ExceptionType]</c> part of the gateway's fault string.</param>
        /// <param name="httpStatus">The HTTP status of the last answer, 0 when none came.</param>
        /// <param name="attempts">How many times the request was sent.</param>
        /// <param name="innerException">The exception that caused this one, if any.</param>
        public GatewayException(
            string message,
            string code,
            string requestId,
            string exceptionType,
            int httpStatus,
            int attempts,
            Exception innerException)
            : base(message, innerException)
        {
            _code = code;
            _requestId = requestId;
            _exceptionType = exceptionType;
            _httpStatus = httpStatus;
            _attempts = attempts;
        }

        /// <summary>Restores an exception from serialized data.</summary>
        /// <param name="info">The serialized data.</param>
        /// <param name="context">The source of the data.</param>
        protected GatewayException(SerializationInfo info, StreamingContext context)
            : base(info, context)
        {
            _code = info.GetString("Code");
            _requestId = info.GetString("RequestId");
            _exceptionType = info.GetString("ExceptionType");
            _httpStatus = info.GetInt32("HttpStatus");
            _attempts = info.GetInt32("Attempts");
        }

        /// <summary>
        /// The gateway's fault code (such as <c>AUTHENTICATION_FAILED</c> or
        /// <c>OUTCOME_UNKNOWN</c>), or the library's own: <c>GATEWAY_UNREACHABLE</c>,
        /// <c>TLS_FAILED</c> or <c>UNEXPECTED_RESPONSE</c>.
        /// </summary>
        public string Code
        {
            get { return _code; }
        }

        /// <summary>
        /// The id the gateway logged the call under (the same for every attempt of one call);
        /// give it to the gateway's operators when asking about the call.
        /// </summary>
        public string RequestId
        {
            get { return _requestId; }
        }

        /// <summary>
        /// The <c>[ExceptionType]</c> part of the gateway's fault string (such as
        /// <c>AuthenticationException</c>); null when the gateway sent no fault.
        /// </summary>
        public string ExceptionType
        {
            get { return _exceptionType; }
        }

        /// <summary>The HTTP status of the last answer; 0 when no answer came.</summary>
        public int HttpStatus
        {
            get { return _httpStatus; }
        }

        /// <summary>How many times the request was sent before the library gave up.</summary>
        public int Attempts
        {
            get { return _attempts; }
        }

        /// <summary>Stores the exception's details for serialization.</summary>
        /// <param name="info">Receives the data.</param>
        /// <param name="context">The destination of the data.</param>
        [SecurityPermission(SecurityAction.Demand, SerializationFormatter = true)]
        public override void GetObjectData(SerializationInfo info, StreamingContext context)
        {
            if (info == null)
            {
                throw new ArgumentNullException("info");
            }
            base.GetObjectData(info, context);
            info.AddValue("Code", _code);
            info.AddValue("RequestId", _requestId);
            info.AddValue("ExceptionType", _exceptionType);
            info.AddValue("HttpStatus", _httpStatus);
            info.AddValue("Attempts", _attempts);
        }
    }
}
