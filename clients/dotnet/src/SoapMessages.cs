using System;
using System.Globalization;
using System.IO;
using System.Text;
using System.Xml;
using System.Xml.XPath;

namespace CSFMSEJournalInterface
{
    /// <summary>
    /// The SOAP 1.1 messages of the E-Journal service: the request envelope, written once per
    /// call, and the answer: the operation's result document, or a fault.
    /// </summary>
    internal static class SoapMessages
    {
        internal const string ServiceNamespace = "urn:fng-gateway:ejournal";
        internal const string FaultNamespace = "urn:fng-gateway:fault";
        internal const string EnvelopeNamespace = "http://schemas.xmlsoap.org/soap/envelope/";

        /// <summary>The code of a call refused before anything was sent, as the gateway names a
        /// request it cannot read.</summary>
        internal const string MalformedRequest = "MALFORMED_REQUEST";

        /// <summary>The value of the SOAPAction header for an operation, quoted.</summary>
        internal static string Action(string operation)
        {
            return "\"" + ServiceNamespace + "/" + operation + "\"";
        }

        /// <summary>
        /// The UTF-8 request envelope: the AuthHeader, then the operation element with one
        /// text parameter. A document parameter is passed as its markup, which is written
        /// escaped as text, exactly as given. Returns the envelope's buffer, of which the first
        /// <paramref name="length"/> bytes are the envelope (not copied once more).
        /// </summary>
        /// <exception cref="GatewayException">A value holds a character XML cannot carry (code <c>MALFORMED_REQUEST</c>).</exception>
        internal static byte[] Request(
            string operation,
            string parameter,
            string value,
            string username,
            string password,
            string database,
            out int length)
        {
            var settings = new XmlWriterSettings();
            settings.Encoding = new UTF8Encoding(false);
            settings.Indent = false;
            // A carriage return is written as &#xD; so the gateway reads back exactly what was
            // given; a bare line feed needs nothing.
            settings.NewLineHandling = NewLineHandling.Entitize;
            settings.CheckCharacters = true;
            var buffer = new MemoryStream(1024 + (value.Length * 2));
            using (XmlWriter writer = XmlWriter.Create(buffer, settings))
            {
                writer.WriteStartDocument();
                writer.WriteStartElement("soap", "Envelope", EnvelopeNamespace);
                writer.WriteAttributeString("xmlns", "ej", null, ServiceNamespace);
                writer.WriteStartElement("soap", "Header", EnvelopeNamespace);
                writer.WriteStartElement("ej", "AuthHeader", ServiceNamespace);
                Text(writer, "Username", username, "The username given to the constructor", false);
                Text(writer, "Password", password, "The password given to the constructor", false);
                Text(writer, "Database", database, "The database given to the constructor", false);
                writer.WriteEndElement();
                writer.WriteEndElement();
                writer.WriteStartElement("soap", "Body", EnvelopeNamespace);
                writer.WriteStartElement("ej", operation, ServiceNamespace);
                Text(writer, parameter, value, parameter, true);
                writer.WriteEndElement();
                writer.WriteEndElement();
                writer.WriteEndElement();
                writer.WriteEndDocument();
            }
            length = (int)buffer.Length;
            return buffer.GetBuffer();
        }

        /// <summary>
        /// Writes one text parameter. A value XML cannot carry is refused before anything is
        /// sent; the value itself is never quoted (it may be a password), only, where
        /// <paramref name="locate"/>, the character and where it is.
        /// </summary>
        private static void Text(XmlWriter writer, string name, string value, string what, bool locate)
        {
            int invalid = IndexOfInvalid(value);
            if (invalid >= 0)
            {
                throw Unsendable(what + " holds a character that XML cannot carry ("
                    + (locate ? CodePoint(value, invalid) + " at position " + (invalid + 1) + "; " : string.Empty)
                    + "a control character or a broken surrogate pair); remove it and call again.");
            }
            writer.WriteStartElement("ej", name, ServiceNamespace);
            writer.WriteString(value);
            writer.WriteEndElement();
        }

        /// <summary>
        /// The markup of a journal as the caller built it: the document element of an
        /// <see cref="XmlDocument"/>, an <see cref="XmlElement"/> as it is, or the element a
        /// navigator stands on (else its document element), written without indentation.
        /// Every input is written by an <see cref="XmlWriter"/> that writes tabs, carriage
        /// returns and line feeds in attribute values as character references (&amp;#x9;,
        /// &amp;#xD;, &amp;#xA;): written raw, the gateway's parser would read them as spaces
        /// (XML's attribute-value normalisation) and the journal would reach FNG altered.
        /// </summary>
        /// <exception cref="ArgumentException">xmlData holds no element.</exception>
        /// <exception cref="GatewayException">The journal holds a character XML cannot carry (code <c>MALFORMED_REQUEST</c>).</exception>
        internal static string Markup(IXPathNavigable xmlData)
        {
            XmlNode node = null;
            XPathNavigator navigator = null;
            var document = xmlData as XmlDocument;
            if (document != null)
            {
                if (document.DocumentElement == null)
                {
                    throw new ArgumentException("xmlData is an empty XmlDocument: load the journal first.", "xmlData");
                }
                node = document.DocumentElement;
            }
            else if (xmlData is XmlElement)
            {
                node = (XmlElement)xmlData;
            }
            else
            {
                navigator = xmlData.CreateNavigator();
                if (navigator == null)
                {
                    throw new ArgumentException("xmlData gives no navigator to read the journal with.", "xmlData");
                }
                if (navigator.NodeType != XPathNodeType.Element)
                {
                    navigator.MoveToRoot();
                    if (!navigator.MoveToChild(XPathNodeType.Element))
                    {
                        throw new ArgumentException("xmlData holds no journal element.", "xmlData");
                    }
                }
            }

            var settings = new XmlWriterSettings();
            settings.OmitXmlDeclaration = true;
            settings.Indent = false;
            settings.NewLineHandling = NewLineHandling.Entitize;
            settings.ConformanceLevel = ConformanceLevel.Fragment;
            settings.CheckCharacters = true;
            var text = new StringBuilder();
            try
            {
                using (XmlWriter writer = XmlWriter.Create(text, settings))
                {
                    // Through a navigator, which writes an entity reference's text (a journal
                    // whose DOCTYPE declares entities is sent without its DOCTYPE).
                    (node != null ? node.CreateNavigator() : navigator).WriteSubtree(writer);
                }
            }
            catch (ArgumentException)
            {
                throw Unsendable(InvalidJournal(node != null ? node.CreateNavigator() : navigator));
            }
            catch (XmlException)
            {
                throw Unsendable(InvalidJournal(node != null ? node.CreateNavigator() : navigator));
            }
            return text.ToString();
        }

        /// <summary>Says which character of a journal XML cannot carry, and where, without
        /// quoting the journal.</summary>
        private static string InvalidJournal(XPathNavigator journal)
        {
            string where = Find(journal.Clone());
            return "xmlData holds a character that XML cannot carry ("
                + (where == null ? string.Empty : where + "; ")
                + "a control character or a broken surrogate pair), so it cannot be sent; remove it and call again.";
        }

        /// <summary>The first character XML cannot carry below <paramref name="node"/>, as
        /// "U+0001 in the description attribute of a Txn element", or null.</summary>
        private static string Find(XPathNavigator node)
        {
            if (node.NodeType == XPathNodeType.Element)
            {
                XPathNavigator attribute = node.Clone();
                if (attribute.MoveToFirstAttribute())
                {
                    do
                    {
                        int at = IndexOfInvalid(attribute.Value);
                        if (at >= 0)
                        {
                            return CodePoint(attribute.Value, at) + " in the " + attribute.Name
                                + " attribute of a " + node.Name + " element";
                        }
                    }
                    while (attribute.MoveToNextAttribute());
                }
                XPathNavigator child = node.Clone();
                if (child.MoveToFirstChild())
                {
                    do
                    {
                        string found = Find(child);
                        if (found != null)
                        {
                            return found;
                        }
                    }
                    while (child.MoveToNext());
                }
                return null;
            }
            int index = IndexOfInvalid(node.Value);
            if (index < 0)
            {
                return null;
            }
            XPathNavigator parent = node.Clone();
            string owner = parent.MoveToParent() && parent.NodeType == XPathNodeType.Element
                ? " of a " + parent.Name + " element"
                : string.Empty;
            return CodePoint(node.Value, index) + " in the " + node.NodeType.ToString().ToLowerInvariant() + owner;
        }

        /// <summary>The index of the first character XML 1.0 cannot carry, or -1.</summary>
        internal static int IndexOfInvalid(string value)
        {
            if (value == null)
            {
                return -1;
            }
            for (int i = 0; i < value.Length; i++)
            {
                char c = value[i];
                if (char.IsHighSurrogate(c))
                {
                    if (i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                    {
                        i++;
                        continue;
                    }
                    return i;
                }
                if (char.IsLowSurrogate(c)
                    || (c < ' ' && c != '\t' && c != '\n' && c != '\r')
                    || c == '\uFFFE'
                    || c == '\uFFFF')
                {
                    return i;
                }
            }
            return -1;
        }

        private static string CodePoint(string value, int index)
        {
            return "U+" + ((int)value[index]).ToString("X4", CultureInfo.InvariantCulture);
        }

        private static GatewayException Unsendable(string message)
        {
            return new GatewayException(message, MalformedRequest, null, null, 0, 0, null);
        }

        /// <summary>
        /// Parses an answer safely (no DTD, nothing fetched). Null when it is not XML, or not a
        /// SOAP 1.1 envelope with a body element.
        /// </summary>
        internal static XmlElement BodyElement(byte[] data)
        {
            if (data == null || data.Length == 0)
            {
                return null;
            }
            var settings = new XmlReaderSettings();
            settings.DtdProcessing = DtdProcessing.Prohibit;
            settings.XmlResolver = null;
            settings.IgnoreComments = true;
            settings.IgnoreProcessingInstructions = true;
            var document = new XmlDocument();
            document.XmlResolver = null;
            try
            {
                using (var stream = new MemoryStream(data, false))
                using (XmlReader reader = XmlReader.Create(stream, settings))
                {
                    document.Load(reader);
                }
            }
            catch (XmlException)
            {
                return null;
            }
            XmlElement envelope = document.DocumentElement;
            if (envelope == null || !Is(envelope, "Envelope", EnvelopeNamespace))
            {
                return null;
            }
            XmlElement body = Child(envelope, "Body", EnvelopeNamespace);
            return body == null ? null : FirstElement(body);
        }

        /// <summary>Whether a body element is a SOAP 1.1 fault.</summary>
        internal static bool IsFault(XmlElement element)
        {
            return Is(element, "Fault", EnvelopeNamespace);
        }

        /// <summary>The gateway's fault: its faultstring, and from its GatewayFault detail the
        /// code and request id. Null when the fault is not the gateway's (no GatewayFault).</summary>
        internal static GatewayFault ReadFault(XmlElement fault)
        {
            XmlElement detail = Child(fault, "detail", string.Empty);
            XmlElement gatewayFault = detail == null ? null : Child(detail, "GatewayFault", FaultNamespace);
            if (gatewayFault == null)
            {
                return null;
            }
            XmlElement code = Child(gatewayFault, "code", FaultNamespace);
            if (code == null || code.InnerText.Trim().Length == 0)
            {
                return null;
            }
            XmlElement requestId = Child(gatewayFault, "requestId", FaultNamespace);
            XmlElement faultString = Child(fault, "faultstring", string.Empty);
            XmlElement faultCode = Child(fault, "faultcode", string.Empty);
            return new GatewayFault(
                code.InnerText.Trim(),
                faultString == null ? string.Empty : faultString.InnerText,
                requestId == null ? null : requestId.InnerText.Trim(),
                faultCode != null && IsServerCode(faultCode.InnerText));
        }

        /// <summary>
        /// Whether a SOAP fault code (a QName such as <c>soap:Server</c>, or SOAP 1.2's
        /// <c>soap:Receiver</c>, possibly with a dotted subcode) blames the server.
        /// </summary>
        private static bool IsServerCode(string qualifiedName)
        {
            string name = qualifiedName.Trim();
            int colon = name.LastIndexOf(':');
            if (colon >= 0)
            {
                name = name.Substring(colon + 1);
            }
            int dot = name.IndexOf('.');
            if (dot >= 0)
            {
                name = name.Substring(0, dot);
            }
            return name == "Server" || name == "Receiver";
        }

        /// <summary>
        /// The result document of <c>{operation}Response/{operation}Result</c>, or null when
        /// the element is not that response.
        /// </summary>
        internal static XmlElement Result(XmlElement response, string operation)
        {
            if (!Is(response, operation + "Response", ServiceNamespace))
            {
                return null;
            }
            XmlElement result = Child(response, operation + "Result", ServiceNamespace);
            return result == null ? null : FirstElement(result);
        }

        /// <summary>The boolean child <c>name</c> of a response element (false when absent).</summary>
        internal static bool Flag(XmlElement response, string name)
        {
            XmlElement flag = Child(response, name, ServiceNamespace);
            if (flag == null)
            {
                return false;
            }
            try
            {
                return XmlConvert.ToBoolean(flag.InnerText.Trim());
            }
            catch (FormatException)
            {
                return false;
            }
        }

        /// <summary>A new document holding a copy of <paramref name="element"/> as its document
        /// element, with an XML declaration when one is given.</summary>
        internal static XmlDocument Document(XmlElement element, string declaredEncoding)
        {
            var document = new XmlDocument();
            document.XmlResolver = null;
            if (declaredEncoding != null)
            {
                document.AppendChild(document.CreateXmlDeclaration("1.0", declaredEncoding, null));
            }
            document.AppendChild(document.ImportNode(element, true));
            return document;
        }

        private static bool Is(XmlElement element, string localName, string namespaceUri)
        {
            return element.LocalName == localName && element.NamespaceURI == namespaceUri;
        }

        private static XmlElement Child(XmlElement parent, string localName, string namespaceUri)
        {
            for (XmlNode node = parent.FirstChild; node != null; node = node.NextSibling)
            {
                var element = node as XmlElement;
                if (element != null && Is(element, localName, namespaceUri))
                {
                    return element;
                }
            }
            return null;
        }

        private static XmlElement FirstElement(XmlElement parent)
        {
            for (XmlNode node = parent.FirstChild; node != null; node = node.NextSibling)
            {
                var element = node as XmlElement;
                if (element != null)
                {
                    return element;
                }
            }
            return null;
        }
    }

    /// <summary>A SOAP fault sent by the gateway.</summary>
    internal sealed class GatewayFault
    {
        internal GatewayFault(string code, string faultString, string requestId, bool isServer)
        {
            Code = code;
            FaultString = faultString;
            RequestId = requestId;
            IsServer = isServer;
            int colon = faultString.IndexOf(':');
            if (colon > 0)
            {
                string type = faultString.Substring(0, colon);
                bool name = true;
                foreach (char c in type)
                {
                    name &= char.IsLetterOrDigit(c) || c == '.' || c == '_';
                }
                ExceptionType = name ? type : null;
            }
        }

        /// <summary>The fault's code, such as AUTHENTICATION_FAILED.</summary>
        internal string Code { get; private set; }

        /// <summary>The fault string: <c>[ExceptionType]:[Message]</c>.</summary>
        internal string FaultString { get; private set; }

        /// <summary>The <c>[ExceptionType]</c> part of the fault string, if it has one.</summary>
        internal string ExceptionType { get; private set; }

        /// <summary>The request id the gateway logged the call under.</summary>
        internal string RequestId { get; private set; }

        /// <summary>Whether the fault code blames the server (<c>soap:Server</c>), not the request.</summary>
        internal bool IsServer { get; private set; }
    }
}
